"""The ingress's counts, as Prometheus reads them."""

from __future__ import annotations

from prometheus_client import generate_latest

from wapipe.ingress.metrics import IngressMetrics


def test_counts_and_histogram_in_prometheus_text() -> None:
    metrics = IngressMetrics()
    metrics.requests["ok"] += 2
    metrics.events["status"] += 3
    metrics.in_flight = 1
    for seconds in (0.0005, 0.003, 0.003, 7.0):
        metrics.observe_publish(seconds)
    text = generate_latest(metrics.registry).decode()
    assert 'wapipe_ingress_requests_total{outcome="ok"} 2.0' in text
    assert 'wapipe_ingress_requests_total{outcome="unavailable"} 0.0' in text
    assert 'wapipe_ingress_events_total{kind="status"} 3.0' in text
    assert "wapipe_ingress_in_flight 1.0" in text
    assert 'wapipe_ingress_publish_seconds_bucket{le="0.001"} 1.0' in text
    assert 'wapipe_ingress_publish_seconds_bucket{le="0.005"} 3.0' in text
    assert 'wapipe_ingress_publish_seconds_bucket{le="5.0"} 3.0' in text
    assert 'wapipe_ingress_publish_seconds_bucket{le="+Inf"} 4.0' in text
    assert "wapipe_ingress_publish_seconds_count 4.0" in text
    assert "wapipe_ingress_publish_seconds_sum 7.0065" in text
