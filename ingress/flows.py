"""POST /flows: WhatsApp Flows' data-exchange endpoint (docs/flows.md).

    signature (X-Hub-Signature-256, the app secrets)   bad       -> 432
    body -> envelope -> decrypted with a private key   cannot    -> 421 (the client refetches
                                                                     the public key, retries)
    ping                                               answered here: {"data":{"status":"active"}}
    INIT, data_exchange, BACK (error notifications     handed to the flow handlers over RabbitMQ
      included)                                          (ingress/flows_rpc.py), within
                                                         WAPIPE_FLOWS_DEADLINE_S
      answered                                         200, the answer encrypted
      token refused, or no handler knows the flow      427, {"error_msg": ...} encrypted
      late, failed, or no handler running              on a screen: 200, that screen with an
                                                         error_message (a snackbar, the
                                                         customer may retry); else 500
    any other action                                   400

It lives in the ingress because Meta calls it at the same public address as the webhooks,
signed with the same app secrets: one service to expose, one TLS front, one set of secrets.
Nothing decrypted is logged: log lines name the action and the outcome, never the flow token,
the screen's data or the customer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from prometheus_client.core import CounterMetricFamily, Metric, SummaryMetricFamily
from prometheus_client.registry import Collector

from wapipe.ingress.flows_rpc import FlowsBroker, HandlersUnavailable
from wapipe.shared import signature
from wapipe.shared.flows import crypto
from wapipe.shared.flows.protocol import (
    HANDLED_ACTIONS,
    PING,
    FlowReply,
    FlowRequest,
    encoder,
    ping_body,
    request_decoder,
    token_invalid_body,
)
from wapipe.shared.logs import Throttle

log = logging.getLogger(__name__)
throttle = Throttle()

PATH: Final = "/flows"
# Meta's documented endpoint error codes (docs/flows.md, "Errors").
CANNOT_DECRYPT: Final = 421
TOKEN_INVALID: Final = 427
BAD_SIGNATURE: Final = 432
TRY_AGAIN: Final = "Something went wrong on our side. Please try again."
GONE: Final = "This form is no longer available."

OUTCOMES: Final = (
    "answered",
    "ping",
    "token_invalid",
    "error_answer",
    "bad_signature",
    "cannot_decrypt",
    "bad_request",
    "not_configured",
)


class FlowsMetrics(Collector):
    """Plain counts, collected when /metrics is scraped (as ingress/metrics.py does)."""

    def __init__(self) -> None:
        self.answers = dict.fromkeys(OUTCOMES, 0)
        self.seconds_sum = 0.0
        self.seconds_count = 0

    def collect(self) -> Iterator[Metric]:
        answers = CounterMetricFamily(
            "wapipe_flows_requests", "Flows endpoint requests by outcome.", labels=["outcome"]
        )
        for outcome, count in self.answers.items():
            answers.add_metric([outcome], count)
        yield answers
        yield SummaryMetricFamily(
            "wapipe_flows_request_seconds",
            "Time to answer a Flows endpoint request.",
            count_value=self.seconds_count,
            sum_value=self.seconds_sum,
        )


@dataclass
class FlowsEndpoint:
    """What POST /flows needs: the keys (none: not configured), the broker, the deadline."""

    keys: tuple[RSAPrivateKey, ...]
    secrets: tuple[bytes, ...]
    broker: FlowsBroker
    deadline_s: float
    max_body_bytes: int
    metrics: FlowsMetrics = field(default_factory=FlowsMetrics)


ENDPOINT: Final = web.AppKey("flows_endpoint", FlowsEndpoint)


async def receive(request: web.Request) -> web.Response:
    endpoint = request.app[ENDPOINT]
    started = time.perf_counter()
    outcome, response = await _answer(endpoint, request)
    endpoint.metrics.answers[outcome] += 1
    endpoint.metrics.seconds_count += 1
    endpoint.metrics.seconds_sum += time.perf_counter() - started
    return response


async def _answer(endpoint: FlowsEndpoint, request: web.Request) -> tuple[str, web.Response]:
    if not endpoint.keys:
        throttle.warning(log, "flows-off", "flows request, but WAPIPE_FLOWS_PRIVATE_KEY is unset")
        return "not_configured", web.Response(status=503, text="flows endpoint not configured")
    digest = signature.parse(request.headers.get(signature.HEADER))
    try:
        body = await request.read()
    except web.HTTPRequestEntityTooLarge:
        return "bad_request", web.Response(status=413, text="body too large")
    if digest is None or not signature.is_valid(digest, body, endpoint.secrets):
        throttle.warning(log, "flows-signature", "flows request signature does not match")
        return "bad_signature", web.Response(status=BAD_SIGNATURE, text="bad signature")
    try:
        clear, session = crypto.decrypt_request(crypto.envelope_decoder.decode(body), endpoint.keys)
    except (crypto.DecryptionFailed, msgspec.DecodeError) as exc:
        reason = str(exc) if isinstance(exc, crypto.DecryptionFailed) else "not an envelope"
        throttle.warning(log, "flows-decrypt", "flows request cannot be decrypted", reason=reason)
        return "cannot_decrypt", web.Response(status=CANNOT_DECRYPT, text="cannot decrypt")
    try:
        flow_request = request_decoder.decode(clear)
    except msgspec.DecodeError:
        return "bad_request", web.Response(status=400, text="not a flows request")
    if flow_request.action == PING:
        return "ping", _sealed(200, ping_body(), session)
    if flow_request.action not in HANDLED_ACTIONS:
        throttle.warning(log, "flows-action", "unknown flows action", action=flow_request.action)
        return "bad_request", web.Response(status=400, text="unknown action")
    return await _handed_over(endpoint, flow_request, clear, session)


async def _handed_over(
    endpoint: FlowsEndpoint, flow_request: FlowRequest, clear: bytes, session: crypto.Session
) -> tuple[str, web.Response]:
    try:
        reply = await endpoint.broker.ask(clear, endpoint.deadline_s)
    except HandlersUnavailable as exc:
        throttle.warning(log, "flows-late", "flow handlers did not answer", reason=str(exc))
        reply = FlowReply(outcome="failed")
    return _from_reply(flow_request, reply, session)


def _from_reply(
    flow_request: FlowRequest, reply: FlowReply, session: crypto.Session
) -> tuple[str, web.Response]:
    if reply.outcome == "answered":
        return "answered", _sealed(200, reply.body, session)
    if reply.outcome == "token_invalid":
        return "token_invalid", _sealed(TOKEN_INVALID, reply.body, session)
    if reply.outcome == "unclaimed":
        return "token_invalid", _sealed(TOKEN_INVALID, token_invalid_body(GONE), session)
    if flow_request.screen:
        retry_here = {"screen": flow_request.screen, "data": {"error_message": TRY_AGAIN}}
        return "error_answer", _sealed(200, retry_here, session)
    return "error_answer", web.Response(status=500, text="flow handler failed")


def _sealed(status: int, body: dict[str, Any], session: crypto.Session) -> web.Response:
    return web.Response(
        status=status,
        text=crypto.encrypt_response(encoder.encode(body), session),
        content_type="text/plain",
    )
