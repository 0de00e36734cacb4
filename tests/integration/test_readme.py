"""Every README block marked as run against `wapipe up` works as written: each of its lines, in
order, in one shell, in the folder `wapipe up` runs in, exits 0, and says what it should."""

from __future__ import annotations

import asyncio
import re
import shutil
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.integration.local_system import REPOSITORY, LocalSystem, wapipe_up

MARK = "<!-- tests/integration/test_readme.py runs this block"


def marked_blocks(readme: str) -> list[list[str]]:
    """The shell lines of each marked block (comment-only lines dropped)."""
    blocks = []
    for found in re.finditer(re.escape(MARK) + r".*?-->\n```sh\n(.*?)```", readme, re.S):
        lines = [line for line in found.group(1).splitlines() if line.strip()]
        blocks.append(lines)
    return blocks


async def run_line(system: LocalSystem, script: str) -> tuple[int, str]:
    shell = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        script,
        cwd=system.folder,
        env=system.env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(shell.communicate(), 90)
    assert shell.returncode is not None
    return shell.returncode, out.decode()


# What some lines must say (beyond exiting 0, a regular expression), by a piece of the line.
EXPECTED = {
    "wapipe demo": "We are open 9:00 to 18:00",
    '--text "hello"': "wamid.",
    "wapipe send text": "accepted: wamid.",
    # The replies' text comes from their send jobs (or, once recorded, from messages).
    "wapipe conversation": r"-> text +Your order has shipped",
    "wapipe jobs list": "accepted",
    "_sandbox/webhooks": '"delivered": true',
    # The sender records an accepted message's type (record_outbound); its statuses follow.
    'sqlite3 var/wapipe.db "select direction': r"out\|text\|read",
    "wapipe_worker_stored": "wapipe_worker_stored_total",
    "wapipe send image": "accepted: wamid.",
    "wapipe send template": "accepted: wamid.",
    "wapipe send reaction": "accepted: wamid.",
    "wapipe send job": "accepted: wamid.",
    "wapipe jobs show": r"state: +accepted",
    "wapipe dlq list": r"wa\.status +0",
    "wapipe dlq purge": r"wa\.status",
}


@pytest.mark.timeout(300)
async def test_every_readme_command_works_as_written(vhost_url: str, tmp_path: Path) -> None:
    readme = (REPOSITORY / "README.md").read_text()
    blocks = marked_blocks(readme)
    # Every shell block is run here, but those of make targets (make up runs the system).
    every = re.findall(r"```sh\n(.*?)```", readme, re.S)
    makes = [
        block for block in every if all(line.startswith("make ") for line in block.splitlines())
    ]
    assert len(blocks) + len(makes) == len(every) == 7
    shutil.copytree(REPOSITORY / "examples", tmp_path / "examples")  # as in a clone
    async with wapipe_up(vhost_url, tmp_path, free_port()) as system:
        assert "console         http://127.0.0.1:8090/_sandbox/console/" in system.banner
        # Lines that set up the ones after: `. .venv/bin/activate` (it holds for the later
        # blocks: a reader activates once), and a variable set for the lines after it.
        setup: list[str] = []
        for block in blocks:
            for line in block:
                if line.lstrip().startswith(". ") or "=$(" in line:
                    setup.append(line)
                    continue
                code, out = await run_line(system, "\n".join(["set -e", *setup, line]))
                assert code == 0, f"{line}\n{out}"
                for piece, says in EXPECTED.items():
                    if piece in line:
                        assert re.search(says, out), f"{line}\n{out}"
