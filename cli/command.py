"""What a command group's module uses to register itself, and nothing heavier than argparse.

    register(commands)            each group module's one entry point, listed in cli/main.py
    lazy("wapipe.cli.x.run", "name")     a command's run function, its module imported when it runs
    add_json_flag(parser)         ``--json``: the answer as JSON for programs, not a table

The one lazy-import rule: a group's registering module imports only argparse and shared/settings;
what a command needs (a service, storage, the Cloud API client, rich, matplotlib, PyYAML) is
imported by its run function, or lives in a module ``lazy`` names.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from typing import TypeAlias

from wapipe.shared.settings import Settings

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Run: TypeAlias = Callable[[Settings, argparse.Namespace], int]


def lazy(module: str, name: str) -> Run:
    """The function ``name`` of ``module``, imported only when the command runs."""

    def run(settings: Settings, args: argparse.Namespace) -> int:
        command: Run = getattr(importlib.import_module(module), name)
        return command(settings, args)

    return run


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON rather than a table")
