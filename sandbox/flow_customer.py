"""A sandbox customer opening a flow message it received and filling it, calling the
business's endpoint as Meta's client does (docs/cloudapi/flows.md): each request sealed to the
number's public key (set through whatsapp_business_encryption) and signed with the app secret,
each answer opened with the request's key. The message says how the flow opens: by flow_id or
flow_name, in draft or published mode, with its flow_token; ``data_exchange`` asks the endpoint
(INIT) for the first screen, ``navigate`` opens on the payload's screen (else the first entry
screen) with its data. A flow that closes sends the ``nfm_reply`` webhook quoting the message.

    POST /_sandbox/customers/{wa_id}/flows   {"message_id": WAMID, "answers": {SCREEN:
                                              {field: value}}}
                                              -> each screen shown and what was entered, each
                                              call to the endpoint and its answer, what the flow
                                              closed with or why not, the endpoint's health
                                              (400 not a flow message, 403 another customer's,
                                              404 unknown, 409 a flow that cannot be opened)
    POST /_sandbox/flows/{flow_id}/ping      the endpoint's health check, as Meta sends it
    POST /_sandbox/faults {"endpoint": "flows_endpoint", "latency_s": 2}   slow (or ``status``,
                                              ``drop``: break) the calls to the endpoint
    GET  /_sandbox/flows/{flow_id}/health    what Meta's monitoring would see: requests, error
                                              rate, latency percentiles
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import asdict
from typing import Any, Final

import aiohttp
from aiohttp import web
from yarl import URL

from wapipe.sandbox import admin, usernames
from wapipe.sandbox.customers import inbound_message
from wapipe.sandbox.faults import FLOWS_ENDPOINT, Fault
from wapipe.sandbox.flow_player import Exchange, Played, entry_screen, play
from wapipe.sandbox.flows import DRAFT, PUBLISHED, FlowRecord, flow_of
from wapipe.sandbox.keys import CONFIG, FAULTS, FEED, WORLD
from wapipe.sandbox.state import Business, SentMessage, World, new_wamid
from wapipe.shared.flows import crypto
from wapipe.shared.flows.keys import load_public
from wapipe.shared.signature import HEADER, sign

APP_SECRET: Final = web.AppKey("flows_app_secret", bytes)
CLIENT_TIMEOUT_S: Final = 10.0  # the WhatsApp client's patience (docs/cloudapi/flows.md)
# Meta's flow_token when the message gives none (not a secret: a correlation id)
UNSET_FLOW_TOKEN: Final = "unused"  # noqa: S105


def admin_routes(prefix: str) -> list[web.RouteDef]:
    return [
        web.post(prefix + "/customers/{wa_id}/flows", customer_opens_flow),
        web.post(prefix + "/flows/{flow_id}/ping", ping_endpoint),
        web.get(prefix + "/flows/{flow_id}/health", endpoint_health),
    ]


def _endpoint_of(request: web.Request, record: FlowRecord) -> str:
    """The flow's endpoint_uri; else the ingress's /flows beside the webhook URL."""
    if record.endpoint_uri:
        return record.endpoint_uri
    return str(URL(request.app[CONFIG].webhook_url).with_path("/flows"))


def caller(request: web.Request, record: FlowRecord, business: Business) -> Exchange:
    """How this customer's client reaches the endpoint, each call timed into ``record``. The
    number's public key is needed at the first call only: a flow that never calls its endpoint
    (navigate and complete alone) opens without one."""
    secret, url = request.app[APP_SECRET], _endpoint_of(request, record)
    faults, feed = request.app[FAULTS], request.app[FEED]

    async def exchange(flow_request: dict[str, Any]) -> tuple[int, dict[str, Any] | None]:
        if not business.business_public_key:
            raise web.HTTPConflict(text="no business public key on this number: set it first")
        public_key = load_public(business.business_public_key)
        envelope, session = crypto.encrypt_request(json.dumps(flow_request).encode(), public_key)
        body = crypto.envelope_encoder.encode(envelope)
        headers = {HEADER: sign(secret, body), "Content-Type": "application/json"}
        fault = faults.pick_for(FLOWS_ENDPOINT)
        if fault is not None:  # shown like a Graph fault (app.py): a counted one may be used up
            feed.publish("fault", path=url, fault=asdict(fault), faults=faults.describe())
        started = time.perf_counter()
        status, text = await _faulty(fault, url, body, headers)
        record.calls.append((time.perf_counter() - started, status))
        try:
            answer = json.loads(crypto.decrypt_response(text, session))
        except (crypto.DecryptionFailed, ValueError):
            return status, None
        return status, answer if isinstance(answer, dict) else None

    return exchange


async def _faulty(
    fault: Fault | None, url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, str]:
    """The call, through a fault if one hits: late by ``latency_s``, answered ``status``
    without reaching the endpoint, or lost (``drop``, ``hang``: as unreachable)."""
    if fault is None:
        return await _post(url, body, headers)
    await asyncio.sleep(fault.latency_s)
    if fault.drop or fault.hang:
        return 0, ""
    if fault.status is not None:
        return fault.status, ""
    return await _post(url, body, headers)


async def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, str]:
    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT_S)
    try:
        async with (
            aiohttp.ClientSession(timeout=timeout) as client,
            client.post(url, data=body, headers=headers) as response,
        ):
            return response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError):
        return 0, ""  # unreachable or too slow: what Meta counts against availability


async def customer_opens_flow(request: web.Request) -> web.Response:
    """The customer taps the CTA of a flow message they received and fills the flow with the
    given answers, the way the message says to open it."""
    world = request.app[WORLD]
    wa_id = request.match_info["wa_id"]
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    sent = _received(request, wa_id, body.get("message_id"))
    answers = body.get("answers", {})
    if not isinstance(answers, dict) or not all(isinstance(a, dict) for a in answers.values()):
        raise web.HTTPBadRequest(text="answers must map each screen id to its fields")
    assert sent.flow is not None  # _received checked it
    opened = _FlowMessage(sent.flow)
    business = world.business(sent.phone_number_id)
    record = _flow_to_open(world, business, opened)
    assert record.flow_json is not None
    opening = None
    if opened.action == "navigate":
        payload = opened.payload
        opening = {
            "screen": payload.get("screen") or entry_screen(record.flow_json),
            "data": payload.get("data") or {},
        }
    played = await play(
        record.flow_json, opened.token, answers, caller(request, record, business), opening
    )
    answer = {
        "message_id": sent.wamid,
        "flow_id": record.id,
        "flow_name": record.name,
        "flow_token": opened.token,
        "flow_action": opened.action,
        "mode": opened.mode,
        **_report(played),
    }
    if played.closed_with is not None:
        answer["nfm_reply_wamid"] = _send_nfm_reply(request, business, wa_id, played, sent.wamid)
    answer["health"] = health(record.calls)
    request.app[FEED].publish("flow", wa_id=wa_id, **answer)
    return web.json_response(answer)


class _FlowMessage:
    """A flow message's action parameters, with Meta's defaults (docs/cloudapi/flows.md)."""

    def __init__(self, parameters: dict[str, Any]) -> None:
        self.flow_id = str(parameters.get("flow_id") or "")
        self.flow_name = str(parameters.get("flow_name") or "")
        self.token = str(parameters.get("flow_token") or UNSET_FLOW_TOKEN)
        self.action = str(parameters.get("flow_action") or "navigate")
        self.mode = str(parameters.get("mode") or "published")
        payload = parameters.get("flow_action_payload")
        self.payload: dict[str, Any] = payload if isinstance(payload, dict) else {}


def _received(request: web.Request, wa_id: str, message_id: Any) -> SentMessage:
    """The flow message ``message_id``, as this customer received it; else a 4xx saying why."""
    if not isinstance(message_id, str) or not message_id:
        raise web.HTTPBadRequest(text="message_id is required: the flow message to open")
    world = request.app[WORLD]
    sent = world.sent.get(message_id)
    if sent is None:
        raise web.HTTPNotFound(text=f"no message {message_id} was sent")
    addressed = world.customer(sent.to)
    if addressed is None or addressed.wa_id != wa_id:
        raise web.HTTPForbidden(text=f"message {message_id} was sent to another customer")
    if sent.flow is None:
        raise web.HTTPBadRequest(text=f"message {message_id} is a {sent.type} message, not a flow")
    if sent.failed_code is not None:
        raise web.HTTPConflict(
            text=f"message {message_id} never reached the customer ({sent.failed_code})"
        )
    return sent


def _flow_to_open(world: World, business: Business, opened: _FlowMessage) -> FlowRecord:
    """The flow the message names (by id, or by name in the number's WABA), if the client may
    open it: a published flow, or a draft sent in draft mode (a published one opens in either
    mode); a deprecated, deleted or unknown one shows the customer an error."""
    if opened.flow_id:
        record = world.flows.get(opened.flow_id)
        named = opened.flow_id
    else:
        record = next(
            (
                f
                for f in world.flows.values()
                if f.waba_id == business.waba_id and f.name == opened.flow_name
            ),
            None,
        )
        named = repr(opened.flow_name)
    if not isinstance(record, FlowRecord) or record.waba_id != business.waba_id:
        raise web.HTTPConflict(text=f"the flow {named} does not exist on this WABA")
    openable = (PUBLISHED, DRAFT) if opened.mode == "draft" else (PUBLISHED,)
    if record.flow_json is None or record.status not in openable:
        raise web.HTTPConflict(
            text=f"the flow {named} cannot be opened in {opened.mode} mode ({record.status})"
        )
    return record


def _report(played: Played) -> dict[str, Any]:
    screens = [
        {
            "screen": shown.screen,
            "title": shown.title,
            "fields": shown.fields,
            "data": shown.data,
            "answers": shown.answers,
            "action": shown.action,
        }
        for shown in played.screens
    ]
    steps = [
        {
            "screen": step.screen,
            "action": step.request.get("action"),
            "sent": step.request.get("data", {}),
            "status": step.status,
            "answered_screen": (step.answer or {}).get("screen"),
            "answer": step.answer,
        }
        for step in played.steps
    ]
    return {
        "screens": screens,
        "steps": steps,
        "closed_with": played.closed_with,
        "error": played.error,
    }


def _send_nfm_reply(
    request: web.Request, business: Business, wa_id: str, played: Played, flow_message_id: str
) -> str:
    world = request.app[WORLD]
    customer = world.customers.get(wa_id) or world.add_customer(wa_id, "Customer")
    now = world.clock.now()
    spec: dict[str, Any] = {
        "reply": "nfm_reply",
        "response_json": played.closed_with,
        "context": {"from": business.display_phone_number, "id": flow_message_id},
    }
    message = inbound_message(
        "interactive",
        sender=admin.sender_id(customer, business, now),
        wamid=new_wamid(),
        timestamp=int(now),
        spec=spec,
    ) | usernames.from_ids(customer)
    admin.deliver_inbound(request.app, business, customer, message, now)
    return str(message["id"])


async def ping_endpoint(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    record = flow_of(world, request.match_info["flow_id"])
    business = next(b for b in world.businesses.values() if b.waba_id == record.waba_id)
    status, answer = await caller(request, record, business)({"version": "3.0", "action": "ping"})
    return web.json_response({"status": status, "answer": answer})


def health(calls: list[tuple[float, int]]) -> dict[str, Any]:
    """Requests, error rate and latency percentiles (ms) over every call so far."""
    if not calls:
        return {"requests": 0}
    latencies = sorted(seconds * 1000 for seconds, _ in calls)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive") if len(calls) > 1 else None
    errors = sum(1 for _, status in calls if status != 200)
    return {
        "requests": len(calls),
        "errors": errors,
        "error_rate": errors / len(calls),
        "p50_ms": round(cuts[49] if cuts else latencies[0], 2),
        "p90_ms": round(cuts[89] if cuts else latencies[0], 2),
        "p99_ms": round(cuts[98] if cuts else latencies[0], 2),
    }


async def endpoint_health(request: web.Request) -> web.Response:
    record = flow_of(request.app[WORLD], request.match_info["flow_id"])
    return web.json_response({"flow_id": record.id, **health(record.calls)})
