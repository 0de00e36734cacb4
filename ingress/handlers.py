"""The ingress's request handlers. Small on purpose: the logic lives in signature.py, split.py
and publish.py; a handler reads the request, calls them in order and picks the answer."""

from __future__ import annotations

import hmac
import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from wapipe.ingress import metrics
from wapipe.ingress.keys import METRICS, PUBLISHER, SECRETS, SETTINGS
from wapipe.ingress.publish import BrokerUnavailable
from wapipe.ingress.split import NotAWebhook, quarantine_event, split_body
from wapipe.shared import signature
from wapipe.shared.logs import Throttle

log = logging.getLogger(__name__)
# One line per reason per 10 s: a broker outage or forged traffic comes by the thousand.
throttle = Throttle()


async def verify(request: web.Request) -> web.Response:
    """GET /webhook: Meta's subscription handshake (docs/cloudapi/webhooks.md)."""
    expected = request.app[SETTINGS].verify_token.encode()
    mode = request.query.get("hub.mode")
    token = request.query.get("hub.verify_token", "").encode()
    challenge = request.query.get("hub.challenge")
    if (
        mode == "subscribe"
        and expected
        and challenge is not None
        and hmac.compare_digest(token, expected)
    ):
        return web.Response(text=challenge)
    throttle.warning(log, "verify", "verification refused", mode=mode)
    return web.Response(status=403, text="forbidden")


async def receive(request: web.Request) -> web.Response:
    """POST /webhook: 200 only once every event of the body is confirmed by the broker."""
    app_metrics = request.app[METRICS]
    app_metrics.in_flight += 1
    try:
        outcome, response = await _receive(request)
    finally:
        app_metrics.in_flight -= 1
    app_metrics.requests[outcome] += 1
    return response


async def _receive(request: web.Request) -> tuple[str, web.Response]:
    received_at = time.time()
    app = request.app
    length = request.content_length
    if length is not None and length > app[SETTINGS].max_body_bytes:
        return metrics.TOO_LARGE, _too_large()
    digest = signature.parse(request.headers.get(signature.HEADER))
    if digest is None:
        throttle.warning(log, "no-signature", "signature missing or malformed")
        return metrics.BAD_SIGNATURE, web.Response(status=401, text="bad signature")
    try:
        body = await request.read()  # stops at client_max_size, never reads past the cap
    except web.HTTPRequestEntityTooLarge:
        return metrics.TOO_LARGE, _too_large()
    secrets: tuple[bytes, ...] = app[SECRETS]
    if not signature.is_valid(digest, body, secrets):
        throttle.warning(log, "bad-signature", "signature does not match any app secret")
        return metrics.BAD_SIGNATURE, web.Response(status=401, text="bad signature")

    outcome = metrics.OK
    try:
        events = split_body(body, received_at)
    except NotAWebhook as exc:
        # Signed, so it is Meta's: keep it whole and answer 200, or Meta retries it for days.
        outcome = metrics.QUARANTINED
        events = [quarantine_event(body, str(exc), received_at)]
        log.warning("body quarantined", extra={"reason": str(exc)[:200], "bytes": len(body)})

    started = time.perf_counter()
    try:
        await app[PUBLISHER].publish_all(events)
    except BrokerUnavailable as exc:
        throttle.warning(log, "unavailable", "broker unavailable, answering 503", error=str(exc))
        return metrics.UNAVAILABLE, web.Response(status=503, text="broker unavailable")
    app_metrics = app[METRICS]
    app_metrics.observe_publish(time.perf_counter() - started)
    for event in events:
        app_metrics.events[event.kind] += 1
    return outcome, web.Response(text="ok")


def _too_large() -> web.Response:
    return web.Response(status=413, text="body too large")


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.Response:
    if request.app[PUBLISHER].ready:
        return web.Response(text="ready")
    return web.Response(status=503, text="broker not connected")


async def metrics_page(request: web.Request) -> web.Response:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
