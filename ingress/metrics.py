"""The ingress's Prometheus metrics.

The hot path counts in plain ints: the ingress is one thread on one event loop, so the lock that
prometheus_client's metric objects take on each of a webhook's five updates buys nothing
(0 to 7 µs a webhook in our measurements: tests/bench/results/publish_cost.md). A collector turns
the counts into metric families when /metrics is scraped, from a registry of the app's own
(tests run several apps in one process).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Final, get_args

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from wapipe.shared.schemas.events import EventKind

# Outcomes of POST /webhook, the label of wapipe_ingress_requests_total.
OK: Final = "ok"
QUARANTINED: Final = "quarantined"
BAD_SIGNATURE: Final = "bad_signature"
TOO_LARGE: Final = "too_large"
UNAVAILABLE: Final = "unavailable"
OUTCOMES: Final = (OK, QUARANTINED, BAD_SIGNATURE, TOO_LARGE, UNAVAILABLE)

EVENT_KINDS: Final = (*get_args(EventKind), "quarantine")

# Confirms normally take a few ms; the tail up to the confirm timeout matters for 503s.
PUBLISH_BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5)


class IngressMetrics(Collector):
    def __init__(self) -> None:
        self.requests = dict.fromkeys(OUTCOMES, 0)
        self.events = dict.fromkeys(EVENT_KINDS, 0)
        self.in_flight = 0
        self._publish_counts = [0] * (len(PUBLISH_BUCKETS_S) + 1)  # the last one is +Inf
        self._publish_sum_s = 0.0
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def observe_publish(self, seconds: float) -> None:
        self._publish_counts[bisect.bisect_left(PUBLISH_BUCKETS_S, seconds)] += 1
        self._publish_sum_s += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "wapipe_ingress_requests", "Webhook POSTs by outcome.", labels=["outcome"]
        )
        for outcome, count in self.requests.items():
            requests.add_metric([outcome], count)
        events = CounterMetricFamily(
            "wapipe_ingress_events", "Events published, by kind.", labels=["kind"]
        )
        for kind, count in self.events.items():
            events.add_metric([kind], count)
        cumulative, buckets = 0, []
        for bound, count in zip(
            (*PUBLISH_BUCKETS_S, float("inf")), self._publish_counts, strict=True
        ):
            cumulative += count
            buckets.append((_bound(bound), cumulative))
        publish = HistogramMetricFamily(
            "wapipe_ingress_publish_seconds",
            "Time from publish to the last confirm of a body.",
            buckets=buckets,
            sum_value=self._publish_sum_s,
        )
        in_flight = GaugeMetricFamily(
            "wapipe_ingress_in_flight", "Webhook POSTs being handled.", value=self.in_flight
        )
        yield from (requests, events, publish, in_flight)


def _bound(seconds: float) -> str:
    return "+Inf" if seconds == float("inf") else repr(float(seconds))
