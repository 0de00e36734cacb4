"""The sandbox web app: a local Cloud API (``/{version}/...``) and its controls (``/_sandbox/...``).

``run()`` is what ``wapipe sandbox`` calls. Graph routes need ``Authorization: Bearer <token>``
(``WAPIPE_ACCESS_TOKEN``); a wrong one answers as Meta does, code 190. Every Graph request is
logged for ``/_sandbox/requests``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Final

from aiohttp import web

from sandbox import admin, business, graph
from sandbox.config import SandboxConfig
from sandbox.errors import GraphError, token_invalid
from sandbox.faults import Fault, Faults
from sandbox.keys import CONFIG, FAULTS, SENDER, TOKEN, WORLD
from sandbox.state import RequestRecord
from sandbox.webhooks import WebhookSender
from shared.eventloop import new_event_loop
from shared.settings import Settings, require

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
    app[SENDER] = WebhookSender(
        config.webhook_url, settings.app_secrets[0], config.chaos, config.retry
    )
    app.router.add_routes(admin.routes(ADMIN_PREFIX))
    app.router.add_routes(business.routes())
    app.router.add_routes(graph.routes())
    app.cleanup_ctx.append(_webhook_sender)
    return app


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
        fault = request.app[FAULTS].pick(request.path)
        if fault is None:
            response = await handler(request)
        else:
            response = await _injected(request, handler, fault)
    except GraphError as error:
        code = error.code
        response = web.json_response(error.response_body(), status=error.http_status)
    world.requests.append(
        RequestRecord(world.clock.now(), request.method, request.path, response.status, code)
    )
    return response


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
    return await handler(request)


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
