"""Every command's error paths: a bad flag, a missing setting, nothing reachable, no database, a
bad value. Each exits with its status from cli/errors.py's table and says so in one line on
stderr: the command's name first, no traceback, no library's repr."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port
from wapipe.cli import localsandbox
from wapipe.cli.errors import UNREACHABLE, USAGE
from wapipe.cli.main import build_parser, main

DEAD_PORT = free_port()
DEAD_URL = f"http://127.0.0.1:{DEAD_PORT}"
NO_DATABASE = {"WAPIPE_DATABASE_URL": "sqlite:////nonexistent/wapipe/wapipe.db"}
CLOUD_API = {"WAPIPE_ACCESS_TOKEN": "t", "WAPIPE_WABA_ID": "1", "WAPIPE_PHONE_NUMBER_ID": "2"}

CASES: list[tuple[tuple[str, ...], dict[str, str], int]] = [
    # Settings missing, and no local sandbox to supply them.
    *(
        (argv, {}, UNREACHABLE)
        for argv in (
            ("templates", "list"),
            ("templates", "sync"),
            ("profile", "show"),
            ("numbers", "list"),
            ("numbers", "show"),
            ("analytics", "messages"),
            ("send", "text", "--to", "1", "--body", "hi"),
            ("sandbox", "load"),
        )
    ),
    # Nothing answers.
    (("templates", "list"), {**CLOUD_API, "WAPIPE_GRAPH_URL": DEAD_URL}, UNREACHABLE),
    *(
        (argv, {"WAPIPE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{DEAD_PORT}/"}, UNREACHABLE)
        for argv in (
            ("topology",),
            ("dlq", "list"),
            ("send", "text", "--to", "1", "--body", "hi", "--from", "2"),
            ("send", "mark-read", "--message-id", "wamid.A", "--from", "2"),
            ("send", "text", "--to", "1", "--body", "hi", "--from", "2", "--wait=delivered"),
        )
    ),
    *(
        ((*argv, "--sandbox-url", DEAD_URL), {}, UNREACHABLE)
        for argv in (
            ("sandbox", "customer", "send", "1"),
            ("sandbox", "customer", "add", "1", "A"),
            ("sandbox", "customer", "open-flow", "1", "wamid.A"),
        )
    ),
    (("demo", "--sandbox-url", DEAD_URL), {}, UNREACHABLE),
    # The database is not there: a read makes none.
    *(
        (argv, NO_DATABASE, UNREACHABLE)
        for argv in (("jobs", "list"), ("jobs", "show", "k"), ("conversation", "1"), ("report",))
    ),
    # A value that is not one.
    (("report", "--since", "monday"), {}, USAGE),
    (("report", "--price", "marketing"), {}, USAGE),
    (("analytics", "pricing", "--until", "2026-02-30"), CLOUD_API, USAGE),
    (("send", "job", "/nonexistent/job.json"), {}, USAGE),
    (("templates", "create", "/nonexistent/template.yaml"), CLOUD_API, USAGE),
    (("sandbox", "load", "--mix", "nothing=1"), {"WAPIPE_APP_SECRETS": "s"}, USAGE),
    (("topology", "--remove"), {}, USAGE),
    (("sandbox", "customer", "open-flow", "1", "wamid.A", "--answers", "[1]"), {}, USAGE),
    (("sandbox", "customer", "open-flow", "1", "wamid.A", "--answers", "@/nonexistent"), {}, USAGE),
]


def leaves(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[str, ...]]:
    """Every command line that names a command to the end (``templates list``, ``topology``)."""
    subparsers = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subparsers or not subparsers[0].required:
        yield path
    for action in subparsers:
        for name, sub in action.choices.items():
            yield from leaves(sub, (*path, name))


@pytest.fixture(autouse=True)
def nothing_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No WAPIPE_* setting, no local sandbox (another test's `wapipe up` must not answer)."""
    for name in list(os.environ):
        if name.startswith("WAPIPE_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(localsandbox, "local_business", lambda *args: None)
    monkeypatch.chdir(tmp_path)


def run(argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        code = main(list(argv))
    except SystemExit as exit:
        code = int(exit.code or 0)
    return code, capsys.readouterr().err.splitlines()


def one_line(lines: list[str], argv: tuple[str, ...]) -> None:
    assert len(lines) == 1, lines
    assert lines[0].startswith("wapipe "), lines
    assert "Traceback" not in lines[0]
    assert " object at 0x" not in lines[0]  # no repr


@pytest.mark.parametrize("command", sorted(set(leaves(build_parser()))), ids=" ".join)
def test_a_bad_flag_is_one_line_and_a_usage_error(
    command: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = run((*command, "--no-such-flag"), capsys)
    assert code == USAGE
    one_line(lines, command)
    assert "--no-such-flag" in lines[0] or "required" in lines[0]


@pytest.mark.parametrize(("argv", "env", "code"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_each_error_is_one_line_with_its_exit_status(
    argv: tuple[str, ...],
    env: dict[str, str],
    code: int,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exit_code, lines = run(argv, capsys)
    assert exit_code == code, lines
    one_line(lines, argv)
    assert not Path("var").exists()  # nothing made here by a command that failed


@pytest.mark.parametrize("argv", [("templates", "list"), ("report",)], ids=" ".join)
def test_a_command_that_needs_the_cli_extra_says_so_when_it_is_missing(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    loaded = [name for name in sys.modules if name.startswith("rich.")]
    for name in ("wapipe.cli.output", "wapipe.cli.templates.run", "wapipe.cli.report.run", *loaded):
        monkeypatch.delitem(sys.modules, name, raising=False)
        package, _, attribute = name.rpartition(".")
        if package in sys.modules:  # `from cli import output` would find it there
            monkeypatch.delattr(sys.modules[package], attribute, raising=False)
    monkeypatch.setitem(sys.modules, "rich", None)  # as if `pip install wapipe` without [cli]
    for name, value in CLOUD_API.items():
        monkeypatch.setenv(name, value)
    code, lines = run(argv, capsys)
    assert (code, lines) == (
        UNREACHABLE,
        [f"wapipe {' '.join(argv)}: this command needs the cli extra: pip install 'wapipe[cli]'"],
    )
