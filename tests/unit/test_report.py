"""The report's arithmetic: nearest-rank percentiles, one count a message a status."""

from __future__ import annotations

from wapipe.cli.report.figures import build, percentile
from wapipe.shared.storage.report import StatusFact


def test_nearest_rank_percentiles() -> None:
    values = [float(v) for v in range(1, 101)]
    assert [percentile(values, p) for p in (50, 90, 99)] == [50.0, 90.0, 99.0]
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_a_status_repeated_counts_once_at_its_earliest() -> None:
    facts = [
        StatusFact("w", "1", "sent", 86400 + 10),
        StatusFact("w", "1", "sent", 86400 + 5),  # a duplicate webhook, earlier timestamp
        StatusFact("w", "1", "delivered", 86400 + 15),
    ]
    report = build(facts, [])
    assert [(d.sent, d.delivered) for d in report.deliveries] == [(1, 1)]
    assert [r.p50_s for r in report.latencies] == [10.0]
