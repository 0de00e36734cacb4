"""Load mode: the offered rate and mix, every body signed and decodable, answers reported."""

from __future__ import annotations

import pytest

from tests.integration.sandbox_support import SECRET, Receiver
from wapipe.sandbox.load import Target, parse_mix, run_load


async def test_load_sends_the_rate_and_mix_asked_for(receiver: tuple[Receiver, str]) -> None:
    report = await run_load(
        Target(receiver[1], SECRET),
        rate_per_s=200,
        duration_s=1.0,
        mix=parse_mix("status=3,text=1"),
        seed=1,
    )
    summary = report.summary()
    assert summary["offered"] == 200
    assert summary["answered"] == {"200": 200}
    assert summary["by_kind"]["status"] + summary["by_kind"]["text"] == 200
    assert summary["by_kind"]["status"] > summary["by_kind"]["text"] > 0
    assert summary["elapsed_s"] >= 0.99  # paced over the second, not sent at once
    assert all(receiver[0].signed)
    statuses = receiver[0].statuses()
    assert len(statuses) == summary["by_kind"]["status"]
    assert len({wamid for wamid, _, _ in statuses}) == len(statuses)  # fresh ids


async def test_load_reports_what_the_receiver_answered(receiver: tuple[Receiver, str]) -> None:
    receiver[0].answers = [503] * 5
    report = await run_load(
        Target(receiver[1], SECRET), rate_per_s=50, duration_s=0.2, mix=parse_mix("text=1")
    )
    assert report.summary()["answered"] == {"503": 5, "200": 5}


@pytest.mark.parametrize("mix", ["", "status=0", "photo=1"])
def test_a_bad_mix_is_refused(mix: str) -> None:
    with pytest.raises(ValueError, match=r"kind|mix"):
        parse_mix(mix)
