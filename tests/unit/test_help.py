"""`wapipe --help` is written for users; every command and option says what it is."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from wapipe.cli import main as wapipe


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


def options() -> Iterator[tuple[str, argparse.Action]]:
    for path, parser in parsers(wapipe.build_parser()):
        for action in parser._actions:
            for flag in action.option_strings:
                yield f"{path} {flag}", action


def test_the_same_flag_means_the_same_thing_everywhere() -> None:
    """--from is the business number's phone number id, --waba the WABA id, a period is
    --since/--until: one tool, one vocabulary."""
    for where, action in options():
        if where.endswith(" --from"):
            assert action.dest == "phone_number_id", where
            assert "phone number id" in (action.help or ""), where
        if where.endswith(" --waba"):
            assert action.dest == "waba", where
        if where.endswith(" --to"):
            assert where.startswith("wapipe send "), where  # the recipient, nothing else
        if where.endswith((" --since", " --until")):
            assert "default" in (action.help or ""), where


def test_every_command_that_answers_with_a_table_offers_json() -> None:
    answering = {"templates", "profile", "numbers", "analytics", "report", "jobs", "conversation"}
    for path, parser in parsers(wapipe.build_parser()):
        words = path.split()
        has_subcommands = any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
        if len(words) > 1 and words[1] in answering and not has_subcommands:
            assert any("--json" in a.option_strings for a in parser._actions), path
