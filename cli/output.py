"""How commands answer people and programs: tables on a terminal (rich), JSON with ``--json``,
progress on long pulls. Imported by a command's run function only (rich is the ``cli`` extra).

    run(name, work)              asyncio.run(work()); its errors go to cli/main.py's error path
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

from wapipe.cli.errors import CommandError

__all__ = ["CommandError", "PullProgress", "emit", "run", "table"]

PIPED_WIDTH: Final = 200


def run(name: str, work: Callable[[], Awaitable[int]]) -> int:
    """Run a command's coroutine; what it raises goes to cli/main.py's one error path."""
    return asyncio.run(_run(work))


async def _run(work: Callable[[], Awaitable[int]]) -> int:
    return await work()


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
