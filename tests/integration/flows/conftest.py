"""Fixtures of the Flows tests: an ingress with a Flows key, and a flows worker behind it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import IngressClient, start_ingress, with_settings
from tests.helpers import wait_until
from tests.integration.flows_support import DEADLINE_S, HANDLERS, private_key
from tests.integration.worker_support import running_worker
from wapipe.ingress import flows
from wapipe.shared.flows import keys
from wapipe.shared.settings import Settings
from wapipe.workers.flows import KIND


@pytest.fixture
def flows_settings(settings: Settings, tmp_path: Path) -> Settings:
    return with_settings(
        settings,
        flows_private_key=keys.private_pem(private_key(0)).decode(),
        flow_handlers=HANDLERS,
        flows_deadline_s=DEADLINE_S,
        database_url=f"sqlite:///{tmp_path}/wapipe.db",
    )


@pytest.fixture
async def endpoint(flows_settings: Settings) -> AsyncIterator[IngressClient]:
    client = await start_ingress(flows_settings)
    await wait_until(lambda: client.app[flows.ENDPOINT].broker.ready, timeout=10)
    yield client
    await client.close()


@pytest.fixture
async def answered(
    endpoint: IngressClient, flows_settings: Settings
) -> AsyncIterator[IngressClient]:
    """The endpoint with a flows worker behind it."""
    async with running_worker(KIND, flows_settings):
        yield endpoint
