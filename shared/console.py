"""What the account commands share: tables on a terminal (rich), JSON with ``--json``, progress
on long pulls, and errors as one clear line with a non-zero exit, never a traceback.

    run(name, work)              asyncio.run(work()), its errors turned into one line and a code
    emit(args, value, table)     JSON of ``value`` with --json, else the table
    table(title, columns, rows)  a rich table
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Final, Self

import msgspec
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from shared.cloudapi.errors import AuthError, CloudApiError
from shared.settings import SettingsError
from shared.storage.database import DatabaseUnreachable
from shared.template_file import TemplateFileError

INVALID: Final = 2  # what was asked cannot be done as asked (a flag, a file, a setting)
FAILED: Final = 1  # the Cloud API or the database refused or could not be reached
PIPED_WIDTH: Final = 200


class CommandError(Exception):
    """A command cannot go on; its message is the one line shown."""

    def __init__(self, message: str, code: int = INVALID) -> None:
        super().__init__(message)
        self.code = code


def run(name: str, work: Callable[[], Awaitable[int]]) -> int:
    """Run a command's coroutine; any expected failure is one line on stderr and its code."""
    try:
        return asyncio.run(_run(work))
    except CommandError as exc:
        return _fail(name, str(exc), exc.code)
    except (SettingsError, TemplateFileError) as exc:
        return _fail(name, str(exc), INVALID)
    except AuthError as exc:
        return _fail(name, f"the access token was refused: {_reason(exc)}", FAILED)
    except CloudApiError as exc:
        return _fail(name, f"the Cloud API refused: {_reason(exc)}", FAILED)
    except (OSError, DatabaseUnreachable) as exc:
        return _fail(name, f"{type(exc).__name__}: {exc}", FAILED)


async def _run(work: Callable[[], Awaitable[int]]) -> int:
    return await work()


def _reason(error: CloudApiError) -> str:
    said = error.details or error.message
    return f"({error.code}) {said}" if error.code is not None else said


def _fail(name: str, message: str, code: int) -> int:
    print(f"wapipe {name}: {message}", file=sys.stderr)
    return code


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON rather than a table")


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    shown = Table(title=title, title_justify="left")
    for column in columns:
        shown.add_column(column)
    for row in rows:
        shown.add_row(*("" if value is None else str(value) for value in row))
    return shown


def emit(args: argparse.Namespace, value: Any, *shown: Table) -> None:
    """``value`` as JSON (--json), or the tables for a person."""
    if getattr(args, "json", False):
        sys.stdout.write(msgspec.json.format(msgspec.json.encode(value)).decode() + "\n")
        return
    # A terminal's own width; piped or redirected, wide enough that cells do not wrap.
    console = Console() if sys.stdout.isatty() else Console(width=PIPED_WIDTH)
    for item in shown:
        console.print(item)


class PullProgress:
    """A progress bar for a long pull, on stderr and only on a terminal (not with --json);
    called with (done, total if known) as pages come."""

    def __init__(self, args: argparse.Namespace, what: str) -> None:
        shown = not getattr(args, "json", False) and sys.stderr.isatty()
        self._bar = Progress(console=Console(stderr=True), transient=True) if shown else None
        self._what = what
        self._task: Any = None

    def __enter__(self) -> Self:
        if self._bar is not None:
            self._bar.start()
            self._task = self._bar.add_task(self._what, total=None)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def __call__(self, done: int, total: int | None) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done, total=total)
