"""Fixtures of the sandbox tests: a receiver where the ingress would be, and a sandbox."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.sandbox_support import Receiver, SandboxClient, start_sandbox


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_post("/webhook", receiver.handle)
    server = TestServer(app)
    await server.start_server()
    yield receiver, str(server.make_url("/webhook"))
    await server.close()


@pytest.fixture
async def sandbox(receiver: tuple[Receiver, str]) -> AsyncIterator[SandboxClient]:
    client = await start_sandbox(receiver[1])
    yield client
    await client.close()
