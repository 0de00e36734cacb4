"""The sandbox web app: a local Cloud API (``/{version}/...``) and its controls (``/_sandbox/...``).

``run()`` is what ``wapipe sandbox`` calls. Graph routes need ``Authorization: Bearer <token>``
(``WAPIPE_ACCESS_TOKEN``); a wrong one answers as Meta does, code 190. Every Graph request is
logged for ``/_sandbox/requests``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from wapipe.sandbox import admin, business, console, flow_customer, flows, graph
from wapipe.sandbox.config import SandboxConfig
from wapipe.sandbox.errors import GraphError, invalid_parameter, token_invalid
from wapipe.sandbox.faults import Fault, Faults, endpoint_of
from wapipe.sandbox.feed import Feed
from wapipe.sandbox.keys import CONFIG, FAULTS, FEED, SENDER, TOKEN, WORLD
from wapipe.sandbox.state import RequestRecord, World
from wapipe.sandbox.webhooks import Delivery, WebhookSender
from wapipe.shared.cloudapi.versions import availability
from wapipe.shared.eventloop import new_event_loop
from wapipe.shared.settings import Settings, require

log = logging.getLogger(__name__)

ADMIN_PREFIX: Final = "/_sandbox"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(settings: Settings, config: SandboxConfig) -> web.Application:
    require(settings, "access_token", "app_secrets")
    app = web.Application(middlewares=[_graph_auth_and_log], client_max_size=100 * 1024 * 1024)
    app[CONFIG] = config
    app[TOKEN] = settings.access_token
    app[WORLD] = config.new_world()
    app[FAULTS] = Faults(seed=config.chaos.seed)
    app[FEED] = feed = Feed()
    app[SENDER] = WebhookSender(
        config.webhook_url,
        settings.app_secrets[0],
        config.chaos,
        config.retry,
        on_attempt=lambda delivery: _feed_attempt(feed, delivery),
    )
    app[flow_customer.APP_SECRET] = settings.app_secrets[0].encode()
    app.router.add_routes(console.routes(ADMIN_PREFIX))  # before admin's catch-all
    app.router.add_routes(flow_customer.admin_routes(ADMIN_PREFIX))
    app.router.add_routes(admin.routes(ADMIN_PREFIX))
    app.router.add_routes(business.routes())
    app.router.add_routes(flows.routes())
    app.router.add_routes(graph.routes())
    app.cleanup_ctx.append(_webhook_sender)
    app.on_shutdown.append(_end_streams)  # before the server waits for open handlers
    return app


async def _end_streams(app: web.Application) -> None:
    app[FEED].close()


def _feed_attempt(feed: Feed, delivery: Delivery) -> None:
    feed.publish(
        "webhook",
        id=delivery.id,
        delivered=delivery.delivered or delivery.attempts[-1].get("status") == 200,
        attempts=delivery.attempts,
        body=json.loads(delivery.body),
    )


async def _webhook_sender(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(app[SENDER].run(), name="webhook-sender")
    yield
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


@web.middleware
async def _graph_auth_and_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path.startswith(ADMIN_PREFIX):
        return await handler(request)
    world = request.app[WORLD]
    code = None
    try:
        if request.headers.get("Authorization") != f"Bearer {request.app[TOKEN]}":
            raise token_invalid()
        _check_version(request.path, world.clock.now())
        fault = request.app[FAULTS].pick(request.path)
        if fault is None:
            response = await handler(request)
        else:
            request.app[FEED].publish(
                "fault",
                path=request.path,
                fault=dataclasses.asdict(fault),
                faults=request.app[FAULTS].describe(),  # a counted one may be used up now
            )
            response = await _injected(request, handler, fault)
    except GraphError as error:
        code = error.code
        request.app[FEED].publish(
            "refused",
            code=error.code,
            title=error.title,
            method=request.method,
            path=request.path,
        )
        response = web.json_response(error.response_body(), status=error.http_status)
    except web.HTTPException as answer:  # 404 of an expired URL, 416, the router's 404/405
        world.requests.append(
            RequestRecord(world.clock.now(), request.method, request.path, answer.status, None)
        )
        raise
    world.requests.append(
        RequestRecord(world.clock.now(), request.method, request.path, response.status, code)
    )
    if endpoint_of(request.path) in MANAGEMENT_ENDPOINTS:
        response.headers.update(_usage_headers(world, request))
    return response


def _check_version(path: str, now: float) -> None:
    """A Graph version never released is refused; one past its end of life is served (Meta
    answers it as the oldest available, shared/cloudapi/versions.py)."""
    version = path.split("/")[1] if path.count("/") > 1 else ""
    if (
        re.fullmatch(r"v[0-9.]+", version)
        and availability(version, datetime.fromtimestamp(now, UTC).date()) == "unknown"
    ):
        raise invalid_parameter(f"Unknown Graph API version: {version}")


MANAGEMENT_ENDPOINTS: Final = ("templates", "profile", "node")
MANAGEMENT_CALLS_PER_HOUR: Final = 5000  # per app per WABA with a registered number (8.5)


def _usage_headers(world: World, request: web.Request) -> dict[str, str]:
    """``X-Business-Use-Case-Usage`` and ``X-App-Usage`` as Graph sends them on management calls
    (docs/cloudapi/sending.md): the share of the hourly allowance used, in percent."""
    waba_id = _waba_of(world, request.match_info)
    now = world.clock.now()
    calls = world.management_calls.setdefault(waba_id, deque())
    calls.append(now)
    while calls and calls[0] <= now - 3600:
        calls.popleft()
    percent = len(calls) * 100 // MANAGEMENT_CALLS_PER_HOUR
    usage = {
        "type": "whatsapp_business_management",
        "call_count": percent,
        "total_cputime": percent,
        "total_time": percent,
        "estimated_time_to_regain_access": 0,
    }
    return {
        "X-Business-Use-Case-Usage": json.dumps({waba_id: [usage]}),
        "X-App-Usage": json.dumps(
            {"call_count": percent, "total_cputime": percent, "total_time": percent}
        ),
    }


def _waba_of(world: World, match_info: Mapping[str, str]) -> str:
    for key in ("waba_id", "phone_number_id", "node_id"):
        node = match_info.get(key, "")
        if node in world.businesses:
            return world.businesses[node].waba_id
        if world.business_by_waba(node) is not None:
            return node
    return next(iter(world.businesses.values())).waba_id


async def _injected(request: web.Request, handler: Handler, fault: Fault) -> web.StreamResponse:
    """What a fault makes of this request (see faults.py)."""
    if fault.latency_s:
        await asyncio.sleep(fault.latency_s)
    if fault.drop and request.transport is not None:
        request.transport.close()  # the client sees the connection reset, no answer
        raise asyncio.CancelledError
    if fault.hang:
        await asyncio.Event().wait()  # until the client gives up and the handler is cancelled
    if fault.code is not None:
        raise GraphError(fault.code, "Injected by the sandbox's faults.")
    if fault.status is not None:
        return web.Response(status=fault.status, text="injected fault")
    response = await handler(request)
    if fault.answer_latency_s:
        await asyncio.sleep(fault.answer_latency_s)
    return response


def run(settings: Settings, config: SandboxConfig) -> None:
    app = create_app(settings, config)
    business = next(iter(app[WORLD].businesses.values()))
    log.info(
        "sandbox starting",
        extra={
            "url": f"http://{config.host}:{config.port}/{config.graph_version}",
            "waba_id": business.waba_id,
            "phone_number_id": business.phone_number_id,
            "webhook_url": config.webhook_url,
        },
    )
    web.run_app(
        app, host=config.host, port=config.port, access_log=None, print=None, loop=new_event_loop()
    )
