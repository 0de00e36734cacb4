"""`--since/--until`: whole UTC days, both included; the last 7 days unless told."""

from __future__ import annotations

from datetime import date

import pytest

from wapipe.cli.errors import USAGE, CommandError
from wapipe.cli.period import Period, period

TODAY = date(2026, 12, 4)


def test_no_flags_mean_the_last_seven_days_up_to_today() -> None:
    assert period(None, None, TODAY) == Period(date(2026, 11, 28), TODAY)


def test_one_flag_gives_seven_days_from_or_to_it() -> None:
    assert period("2026-12-01", None, TODAY).last == date(2026, 12, 7)
    assert period(None, "2026-12-01", TODAY).first == date(2026, 11, 25)


def test_a_period_is_whole_utc_days_both_included() -> None:
    asked = period("2026-12-01", "2026-12-01", TODAY)
    assert (asked.start, asked.end) == (1_796_083_200, 1_796_083_200 + 86_400)


@pytest.mark.parametrize(
    ("since", "until", "says"),
    [
        ("2026-12-02", "2026-12-01", "--since 2026-12-02 --until 2026-12-01: an empty period"),
        ("yesterday", None, "--since yesterday: give a day as YYYY-MM-DD"),
        (None, "2026-13-01", "--until 2026-13-01: give a day as YYYY-MM-DD"),
    ],
)
def test_a_bad_period_is_a_usage_error(since: str | None, until: str | None, says: str) -> None:
    with pytest.raises(CommandError) as refused:
        period(since, until, TODAY)
    assert (refused.value.code, str(refused.value)) == (USAGE, says)
