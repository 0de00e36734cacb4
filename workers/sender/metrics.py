"""The sender's metrics, beside every worker's (workers/metrics.py); names are public."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from wapipe.workers.metrics import WorkerMetrics


class SenderMetrics(WorkerMetrics):
    def __init__(self) -> None:
        super().__init__("sender")
        registry = self.registry
        self.accepted = Counter(
            "wapipe_sender_accepted",
            "Jobs the Cloud API accepted, by sending number.",
            ["phone_number_id"],
            registry=registry,
        )
        self.failed = Counter(
            "wapipe_sender_failed", "Jobs failed, by stage.", ["stage"], registry=registry
        )
        self.refused = Counter(
            "wapipe_sender_refused",
            "Sends refused and to be tried again, by error code.",
            ["code"],
            registry=registry,
        )
        self.repeats = Counter(
            "wapipe_sender_repeats",
            "Jobs that came again (redelivered or republished).",
            registry=registry,
        )
        self.held = Gauge("wapipe_sender_held", "Jobs waiting for their turn.", registry=registry)
        self.parked = Counter(
            "wapipe_sender_parked",
            "Jobs parked in a wait queue, their turn far away.",
            registry=registry,
        )
        self.pace = Gauge(
            "wapipe_sender_pace",
            "A number's pace now, sends per second: its limit, or less after a 130429.",
            ["phone_number_id"],
            registry=registry,
        )
        self.paused = Gauge(
            "wapipe_sender_paused",
            "1 while a number is paused.",
            ["phone_number_id"],
            registry=registry,
        )
