"""Fixtures of the integration tests: a receiver where the ingress would be, a sandbox, and an
S3-compatible server."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from aiobotocore.session import get_session
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.helpers import answers, free_port, wait_until
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


# --- An S3-compatible server (moto's), for the S3 blob store -------------------------------------

CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's server on a port of its own, for this run; AWS credentials it accepts."""
    saved = {name: os.environ.get(name) for name in CREDENTIALS}
    os.environ.update(CREDENTIALS)
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture
async def s3_location(s3_endpoint: str) -> str:
    """``WAPIPE_MEDIA_DIR`` for a bucket made for this test alone."""
    await wait_until(lambda: answers(s3_endpoint, status=None), timeout=20)
    bucket = f"wapipe-{uuid.uuid4().hex[:12]}"
    async with get_session().create_client("s3", endpoint_url=s3_endpoint) as client:
        await client.create_bucket(Bucket=bucket)
    return f"s3://{bucket}/media?endpoint_url={s3_endpoint}"
