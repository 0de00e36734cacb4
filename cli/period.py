"""``--since DAY --until DAY``: the period a command reads, whole UTC days, both included. Pure.

Without them: the last ``DEFAULT_DAYS`` days up to today (UTC), today included; with only one,
the other is ``DEFAULT_DAYS`` days from it. Shared by ``wapipe analytics`` and ``wapipe report``.
"""

from __future__ import annotations

import argparse
from datetime import UTC, date, datetime, timedelta
from typing import Final, NamedTuple

from wapipe.cli.errors import CommandError

DEFAULT_DAYS: Final = 7


class Period(NamedTuple):
    first: date
    last: date  # included

    @property
    def start(self) -> int:
        """Its first second, unix seconds."""
        return _unix(self.first)

    @property
    def end(self) -> int:
        """The second after its last day, unix seconds: [start, end)."""
        return _unix(self.last + timedelta(days=1))


def add_period_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since",
        help=f"first day, YYYY-MM-DD (UTC) (default: {DEFAULT_DAYS - 1} days before --until)",
    )
    parser.add_argument("--until", help="last day, included (default: today, UTC)")


def period(since: str | None, until: str | None, today: date) -> Period:
    """The period the flags ask for; a CommandError (usage) if it is none or empty."""
    span = timedelta(days=DEFAULT_DAYS - 1)
    last = _day("--until", until) if until else None
    first = _day("--since", since) if since else None
    if last is None:
        last = first + span if first is not None else today
    if first is None:
        first = last - span
    if last < first:
        raise CommandError(f"--since {first} --until {last}: an empty period")
    return Period(first, last)


def today_utc() -> date:
    return datetime.now(UTC).date()


def _day(flag: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"{flag} {text}: give a day as YYYY-MM-DD") from None


def _unix(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
