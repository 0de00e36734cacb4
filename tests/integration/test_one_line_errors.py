"""What goes wrong on a first start says so in one line, names the cause, and exits non-zero:
a malformed broker URL (whatever the command), a port in use, a broker plugin missing, a second
`wapipe up`, a service of `wapipe up` that dies. No traceback, no library's log lines."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from pathlib import Path

import pytest

from tests.helpers import free_port
from tests.integration.local_system import wapipe_up

BAD_URLS = (
    ("amqp://guest:guest@127.0.0.1:notaport/", "its port must be a number from 1 to 65535"),
    ("127.0.0.1:5672", "must start with amqp:// or amqps://"),
    ("amqp:///vhost", "names no host"),
)
COMMANDS = (
    ("topology",),
    ("dlq", "list"),
    ("send", "text", "--to", "16315551181", "--body", "hi", "--from", "1"),
    ("worker", "status"),
    ("ingress",),
    ("up",),
)
# The command's name, as its errors begin: `wapipe dlq list: ...`
NAMES = {"dlq": "dlq list", "send": "send text"}


async def wapipe(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, list[str]]:
    """Run ``wapipe ARGS`` to its end: its exit status and its stderr's lines."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wapipe",
        *args,
        env={**os.environ, "WAPIPE_LOG_FORMAT": "json", **(env or {})},
        cwd=cwd,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, err.decode().splitlines()


def our_own(lines: list[str]) -> None:
    """Every line but the last is a log line of wapipe's own: no traceback, no library's."""
    for line in lines[:-1]:
        entry = json.loads(line)
        assert entry["logger"].split(".")[0] in ("ingress", "workers", "wapipe", "shared"), line


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
async def test_a_malformed_broker_url_is_one_line_for_any_command(command: tuple[str, ...]) -> None:
    for url, says in BAD_URLS:
        code, lines = await wapipe(*command, env={"WAPIPE_AMQP_URL": url})
        assert (code, lines) == (
            3,
            [
                f"wapipe {NAMES.get(command[0], command[0])}: configuration error: "
                f"WAPIPE_AMQP_URL: {says} "
                "(e.g. amqp://user:password@host:5672/vhost)"
            ],
        )


async def test_a_port_in_use_names_the_service_and_the_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "WAPIPE_APP_SECRETS": "s",
            "WAPIPE_VERIFY_TOKEN": "t",
            "WAPIPE_INGRESS_PORT": str(port),
        }
        code, lines = await wapipe("ingress", env=env)
        assert code == 3
        assert lines[-1] == (
            "wapipe ingress: the ingress cannot listen: error while attempting to bind on address "
            f"('127.0.0.1', {port}): address already in use "
            "(set WAPIPE_INGRESS_PORT or --port to move it)"
        )
        our_own(lines)

        code, lines = await wapipe("worker", "account", "--metrics-port", str(port))
        assert code == 3
        assert lines[-1].startswith("wapipe worker: the worker account cannot listen: ")
        assert lines[-1].endswith(
            f"('127.0.0.1', {port}): address already in use "
            "(set WAPIPE_METRICS_PORT or --metrics-port to move it)"
        )
        our_own(lines)


async def test_wapipe_up_with_a_port_in_use_names_the_service_before_starting_any(
    vhost_url: str, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"WAPIPE_AMQP_URL": vhost_url, "WAPIPE_INGRESS_PORT": str(port)}
        code, lines = await wapipe("up", env=env, cwd=tmp_path)
    assert code == 1
    assert lines[-1] == (
        f"wapipe up: the ingress cannot listen on port {port}: it is in use "
        "(another wapipe, or another program): set WAPIPE_INGRESS_PORT to move it"
    )
    assert len(lines) == 1


async def test_a_missing_broker_plugin_says_which_and_how_to_enable_it(vhost_url: str) -> None:
    # The broker here has the plugin; a topology naming an exchange type no plugin provides
    # meets the same refusal from the real broker, and is reported the same way.
    script = (
        "import sys, wapipe.shared.topology as t, wapipe.cli.main as wapipe\n"
        "t.EXCHANGES = (*t.EXCHANGES, t.Exchange('wa.test', 'x-consistent-hash-v9'))\n"
        "sys.exit(wapipe.main(['topology']))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        env={**os.environ, "WAPIPE_AMQP_URL": vhost_url, "WAPIPE_LOG_FORMAT": "json"},
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 3
    assert err.decode().splitlines() == [
        "wapipe topology: the broker at WAPIPE_AMQP_URL does not know the exchange type "
        "'x-consistent-hash-v9': enable the plugin that provides it"
    ]


async def test_an_unreachable_broker_is_one_line(tmp_path: Path) -> None:
    url = f"amqp://guest:guest@127.0.0.1:{free_port()}/"
    for command in (("topology",), ("send", "text", "--to", "1", "--body", "x", "--from", "1")):
        code, lines = await wapipe(*command, env={"WAPIPE_AMQP_URL": url})
        assert code == 3
        assert len(lines) == 1
        assert lines[0].startswith(
            f"wapipe {NAMES.get(command[0], command[0])}: cannot reach the broker at "
            "WAPIPE_AMQP_URL"
        )


@pytest.mark.timeout(180)
async def test_a_second_wapipe_up_is_refused_and_a_dying_service_is_named(
    vhost_url: str, tmp_path: Path
) -> None:
    async with wapipe_up(vhost_url, tmp_path, free_port()) as first:
        code, lines = await wapipe("up", env=first.env, cwd=tmp_path)
        assert code == 1
        assert lines == [
            f"wapipe up: another `wapipe up` is running (pid {first.process.pid}, "
            "lock var/wapipe-up.lock): stop it first"
        ]
    # A service that cannot start: `wapipe up` says which and why, and stops the others.
    (tmp_path / "again").mkdir()
    env = {"WAPIPE_AMQP_URL": vhost_url, "WAPIPE_INGRESS_PORT": str(free_port())}
    env["WAPIPE_MESSAGE_HANDLERS"] = "no_such_module:handle"
    code, lines = await wapipe("up", env=env, cwd=tmp_path / "again")
    assert code == 3
    assert lines[-1] == (
        "wapipe up: the worker message exited (code 3): wapipe worker: configuration error: "
        "WAPIPE_MESSAGE_HANDLERS: cannot load 'no_such_module:handle': No module named "
        "'no_such_module'; stopped the others"
    )


async def test_the_demo_without_a_running_system_says_to_start_it(tmp_path: Path) -> None:
    port = free_port()
    code, lines = await wapipe("demo", "--sandbox-url", f"http://127.0.0.1:{port}", cwd=tmp_path)
    assert (code, lines) == (
        3,  # not reachable (cli/errors.py)
        [
            f"wapipe demo: no sandbox answers at http://127.0.0.1:{port}: start `make up` "
            "(or `wapipe up`) first"
        ],
    )
    assert not (tmp_path / "var").exists()  # no database made for nothing
