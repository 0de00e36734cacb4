"""`wapipe up` as a test runs it: in a folder of its own (its ./var: database, media, lock), on the
test's vhost, in a session of its own so that its services die with it if the test fails."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
SANDBOX_URL = "http://127.0.0.1:8090"
CUSTOMER = "16315551181"


@dataclass
class LocalSystem:
    process: asyncio.subprocess.Process
    env: dict[str, str]  # what each command run against it gets
    folder: Path  # its working folder: var/wapipe.db, var/media
    banner: str  # what it printed once ready


async def command(system: LocalSystem, *args: str, within_s: float = 60.0) -> tuple[int, str, str]:
    """``wapipe ARGS`` against the running system: exit status, stdout, stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wapipe",
        *args,
        env=system.env,
        cwd=system.folder,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), within_s)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


@asynccontextmanager
async def wapipe_up(
    vhost_url: str, folder: Path, ingress_port: int, **env: str
) -> AsyncIterator[LocalSystem]:
    (folder / ".venv").symlink_to(REPOSITORY / ".venv")  # the README's `.venv/bin/wapipe`
    full_env = {
        **os.environ,
        "WAPIPE_AMQP_URL": vhost_url,
        "WAPIPE_INGRESS_PORT": str(ingress_port),
        "WAPIPE_LOG_FORMAT": "json",
        **env,
    }
    for name in ("WAPIPE_DATABASE_URL", "WAPIPE_MEDIA_DIR", "WAPIPE_PHONE_NUMBER_ID"):
        full_env.pop(name, None)  # the defaults, as a user has them
    log = folder / "up.log"
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wapipe",
            "up",
            env=full_env,
            cwd=folder,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            start_new_session=True,
        )
    try:
        assert process.stdout is not None
        try:
            banner = await asyncio.wait_for(_banner(process.stdout), timeout=90)
        except (AssertionError, TimeoutError) as exc:
            raise AssertionError(f"{exc}\nits log ends:\n{log.read_text()[-3000:]}") from None
        yield LocalSystem(process, full_env, folder, banner)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def _banner(stdout: asyncio.StreamReader) -> str:
    lines: list[str] = []
    async for raw in stdout:
        line = raw.decode().rstrip()
        lines.append(line)
        if line.startswith("Ctrl-C stops everything"):
            return "\n".join(lines)
    raise AssertionError("wapipe up ended before it was ready:\n" + "\n".join(lines))
