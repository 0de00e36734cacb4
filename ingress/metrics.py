"""The ingress's Prometheus metrics, in a registry of the app's own (tests run several apps)."""

from __future__ import annotations

from typing import Final

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

# `*_created` series double every scrape and nothing here reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

# Outcomes of POST /webhook, the label of wapipe_ingress_requests_total.
OK: Final = "ok"
QUARANTINED: Final = "quarantined"
BAD_SIGNATURE: Final = "bad_signature"
TOO_LARGE: Final = "too_large"
UNAVAILABLE: Final = "unavailable"

EVENT_KINDS: Final = ("status", "message", "account", "quarantine")

# Confirms normally take a few ms; the tail up to the confirm timeout matters for 503s.
_PUBLISH_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0)


class IngressMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "wapipe_ingress_requests",
            "Webhook POSTs by outcome.",
            ["outcome"],
            registry=self.registry,
        )
        self.events = Counter(
            "wapipe_ingress_events",
            "Events published, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.publish_seconds = Histogram(
            "wapipe_ingress_publish_seconds",
            "Time from publish to the last confirm of a body.",
            buckets=_PUBLISH_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "wapipe_ingress_in_flight",
            "Webhook POSTs being handled.",
            registry=self.registry,
        )
        # Children bound once: a scrape shows zeros rather than nothing, and the hot path
        # skips the label look-up.
        self.by_outcome = {
            outcome: self.requests.labels(outcome)
            for outcome in (OK, QUARANTINED, BAD_SIGNATURE, TOO_LARGE, UNAVAILABLE)
        }
        self.by_kind = {kind: self.events.labels(kind) for kind in EVENT_KINDS}
