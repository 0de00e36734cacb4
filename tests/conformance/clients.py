"""Real clients (pywa, heyoo; pinned dev dependencies) pointed at a sandbox under test.

Both clients are synchronous and call ``https://graph.facebook.com``: a transport sends pywa's
calls to the sandbox instead, and heyoo's URL is set to it. Call them from a thread
(``asyncio.to_thread``): the sandbox answers on the test's event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import httpx
from aiohttp import web
from aiohttp.test_utils import TestServer
from heyoo import WhatsApp as Heyoo
from pywa.client import WhatsApp

from tests.integration.sandbox_support import (
    TOKEN,
    Receiver,
    SandboxClient,
    phone_number_id,
    start_sandbox,
)

GRAPH_VERSION = "25.0"


class _ToSandbox(httpx.BaseTransport):
    """Every request to the sandbox's host and port, path and query kept."""

    def __init__(self, base: str) -> None:
        self._base = httpx.URL(base)
        self._inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.url = request.url.copy_with(
            scheme=self._base.scheme, host=self._base.host, port=self._base.port
        )
        return self._inner.handle_request(request)

    def close(self) -> None:
        self._inner.close()


@contextmanager
def pywa_client(sandbox: SandboxClient) -> Iterator[WhatsApp]:
    """pywa against the sandbox: no server of its own, every update parsed as it comes."""
    with httpx.Client(transport=_ToSandbox(str(sandbox.make_url("")))) as session:
        yield WhatsApp(
            phone_id=phone_number_id(sandbox),
            token=TOKEN,
            session=session,
            api_version=GRAPH_VERSION,
            filter_updates=False,
            validate_updates=False,
        )


def heyoo_client(sandbox: SandboxClient) -> Heyoo:
    client = Heyoo(token=TOKEN, phone_number_id=phone_number_id(sandbox))
    client.url = str(sandbox.make_url(f"/v{GRAPH_VERSION}/{phone_number_id(sandbox)}/messages"))
    return client


@dataclass
class Sandboxed:
    sandbox: SandboxClient
    receiver: Receiver  # the webhooks the sandbox sent


@asynccontextmanager
async def running_sandbox() -> AsyncIterator[Sandboxed]:
    """A sandbox whose webhooks a receiver records."""
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/webhook", receiver.handle)
    server = TestServer(app)
    await server.start_server()
    sandbox = await start_sandbox(str(server.make_url("/webhook")))
    try:
        yield Sandboxed(sandbox, receiver)
    finally:
        await sandbox.close()
        await server.close()
