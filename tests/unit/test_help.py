"""`wapipe --help` is written for users; every command and option says what it is."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from cli import main as wapipe


def parsers(
    parser: argparse.ArgumentParser, path: str = "wapipe"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help for choice in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{path} {name} has no description"
                yield from parsers(sub, f"{path} {name}")


def test_every_command_and_option_has_a_description() -> None:
    missing = [
        f"{path} {action.option_strings or action.dest}"
        for path, parser in parsers(wapipe.build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction)
        and not action.help
    ]
    assert missing == []


def test_options_show_their_defaults(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        wapipe.main(["sandbox", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "--port PORT" in shown
    assert "(default: 8090)" in shown
    assert "(default: 80)" in shown  # --rate
    with pytest.raises(SystemExit):
        wapipe.main(["send", "text", "--help"])
    assert "(default: 60)" in " ".join(capsys.readouterr().out.split())  # --timeout


def test_the_top_level_help_is_for_users(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        wapipe.main(["--help"])
    shown = capsys.readouterr().out
    assert shown.startswith("usage: wapipe [-h] COMMAND ...")
    assert "wapipe up " in shown
    assert "wapipe demo " in shown
    assert "/_sandbox/console/" in shown
    assert "lazily" not in shown  # the module's docstring is for us, not for users
