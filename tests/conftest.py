"""Fixtures: a real RabbitMQ, one fresh vhost per test, an ingress app in front of it.

The broker is ``WAPIPE_AMQP_URL`` when set, else the local default; only when neither answers is
one started with testcontainers. Each test gets its own vhost (made and deleted through the
management API), so tests see only their own queues and leave nothing behind.
"""

from __future__ import annotations

import asyncio
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from yarl import URL

from tests.helpers import Broker, wait_until
from wapipe.ingress.app import create_app
from wapipe.ingress.keys import PUBLISHER
from wapipe.shared.settings import Settings
from wapipe.shared.storage.database import open_database

SECRETS = ("first-app-secret", "second-app-secret")
VERIFY_TOKEN = "test-verify-token"


def _answers(url: URL) -> bool:
    try:
        with socket.create_connection((url.host or "127.0.0.1", url.port or 5672), timeout=1):
            return True
    except OSError:
        return False


def _wait_for_management(broker: Broker, timeout_s: float = 60.0) -> None:
    """The management API comes up some seconds after the plugin is enabled."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            broker.api("GET", "/overview")
            return
        except OSError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"RabbitMQ's management API does not answer at {broker.management_url} "
                    "(rabbitmq-plugins enable rabbitmq_management): the tests need it to make "
                    f"a vhost for each test: {exc}"
                ) from exc
            time.sleep(0.5)


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    local = Broker.local()
    if _answers(local.amqp_url):
        _wait_for_management(local)
        yield local
        return
    from testcontainers.rabbitmq import RabbitMqContainer

    with RabbitMqContainer("rabbitmq:3.13-management") as container:
        host = container.get_container_host_ip()
        yield Broker(
            URL(f"amqp://guest:guest@{host}:{container.get_exposed_port(5672)}/"),
            URL(f"http://{host}:{container.get_exposed_port(15672)}"),
        )


@pytest.fixture
def vhost_url(broker: Broker, request: pytest.FixtureRequest) -> Iterator[str]:
    """The AMQP URL of a vhost made for this test alone."""
    test_name = re.sub(r"[^A-Za-z0-9_-]", "-", request.node.name)[:60]
    with broker.vhost(f"wapipe-test-{test_name}-{uuid.uuid4().hex[:8]}") as url:
        yield url


@pytest.fixture
def settings(vhost_url: str) -> Settings:
    return Settings(
        amqp_url=vhost_url,
        app_secrets=SECRETS,
        verify_token=VERIFY_TOKEN,
        confirm_timeout_s=0.5,
        log_format="text",
    )


IngressClient = TestClient[web.Request, web.Application]


async def start_ingress(settings: Settings) -> IngressClient:
    client: IngressClient = TestClient(TestServer(create_app(settings)))
    await client.start_server()
    return client


@pytest.fixture
async def ingress(settings: Settings) -> AsyncIterator[IngressClient]:
    """A running ingress app, connected to the test's vhost."""
    client = await start_ingress(settings)
    await wait_until(lambda: client.app[PUBLISHER].ready, timeout=10)
    yield client
    await client.close()


def with_settings(settings: Settings, **changes: object) -> Settings:
    return msgspec.structs.replace(settings, **changes)


# --- Databases: every storage test runs on SQLite and on PostgreSQL -------------------------------

POSTGRES_ADMIN_URL = os.environ.get(
    "WAPIPE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


async def postgres(*statements: str) -> None:
    try:
        connection = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=10)
    except (OSError, asyncpg.PostgresError) as exc:
        raise RuntimeError(
            f"PostgreSQL does not answer at {POSTGRES_ADMIN_URL} (set WAPIPE_TEST_POSTGRES_URL): "
            f"the storage tests run on it as well as on SQLite: {exc}"
        ) from exc
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()


def _run_apart(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run to completion on a loop of its own: session fixtures may be set up inside a test's."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, coroutine).result()


def _postgres_url(database: str) -> str:
    return make_url(POSTGRES_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_template() -> Iterator[str]:
    """A database migrated once per run; each test gets a copy of it."""
    name = f"wapipe_template_{uuid.uuid4().hex[:12]}"
    _run_apart(postgres(f'CREATE DATABASE "{name}"'))

    async def migrated() -> None:
        async with open_database(_postgres_url(name)):
            pass

    try:
        _run_apart(migrated())
        yield name
    finally:
        _run_apart(postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@asynccontextmanager
async def fresh_postgres(template: str) -> AsyncIterator[str]:
    """A new database copied from the migrated template; dropped on exit."""
    name = f"wapipe_test_{uuid.uuid4().hex[:12]}"
    await postgres(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _postgres_url(name)
    finally:
        await postgres(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of each kind for this test alone, dropped after it."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wapipe.db'}"
        return
    async with fresh_postgres(request.getfixturevalue("postgres_template")) as url:
        yield url


@pytest.fixture
async def postgres_url(postgres_template: str) -> AsyncIterator[str]:
    """For the few tests about PostgreSQL itself (its outages, its locks)."""
    async with fresh_postgres(postgres_template) as url:
        yield url


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    async with open_database(database_url) as opened:
        yield opened
