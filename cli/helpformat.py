"""How ``wapipe``'s help reads (each option's default after its description), and how its
parser refuses (one line)."""

from __future__ import annotations

import argparse
from typing import NoReturn

from wapipe.cli.errors import USAGE


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Each option's default after its description, unless it has none or says it already."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        shown = "default" in text or action.default in (None, False, [], (), argparse.SUPPRESS)
        if action.option_strings and not shown:
            text += " (default: %(default)s)"
        return text


def with_help_formatter(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """``parser`` and every subcommand's, formatted by HelpFormatter."""
    parser.formatter_class = HelpFormatter
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for subparser in set(action.choices.values()):
                with_help_formatter(subparser)
    return parser


class Parser(argparse.ArgumentParser):
    """A parser whose refusal is one line, like every other error of ``wapipe``: the command,
    what is wrong, and where the help is (argparse prints its whole usage first)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE, f"{self.prog}: {message} (see `{self.prog} --help`)\n")
