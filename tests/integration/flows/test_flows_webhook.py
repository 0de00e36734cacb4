"""The `flows` webhook field, typed and stored by the account worker: each flow's latest status
and endpoint alert, forward only in time, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import IngressClient, with_settings
from tests.helpers import WABA_ID, wait_until
from tests.integration.worker_support import post_webhook, running_worker
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database
from wapipe.workers import account

STATUS_CHANGE = {
    "event": "FLOW_STATUS_CHANGE",
    "message": "Flow Webhook Testing changed status from DRAFT to PUBLISHED",
    "flow_id": "1234567890",
    "old_status": "DRAFT",
    "new_status": "PUBLISHED",
}
LATENCY_ALERT = {
    "event": "ENDPOINT_LATENCY",
    "message": "The p90 latency of your endpoint is above 1s",
    "flow_id": "1234567890",
    "alert_state": "ACTIVATED",
    "p90_latency": 2500,
    "p50_latency": 900,
    "requests_count": 1200,
    "threshold": 1000,
}


def flows_body(value: dict[str, Any], entry_time: int) -> bytes:
    change = {"field": "flows", "value": value}
    entry = {"id": WABA_ID, "time": entry_time, "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


@pytest.fixture
def worker_settings(settings: Settings, database_url: str) -> Settings:
    return with_settings(settings, database_url=database_url)


@pytest.fixture
async def engine(worker_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with open_database(worker_settings.database_url) as opened:
        yield opened


async def flow_state(engine: AsyncEngine) -> dict[str, Any] | None:
    async with engine.connect() as connection:
        row = (await connection.execute(select(schema.flows))).mappings().first()
    return dict(row) if row else None


async def test_a_flows_status_and_its_latest_alert_are_kept_forward_only(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    async with running_worker(account.KIND, worker_settings):
        assert await post_webhook(ingress, flows_body(LATENCY_ALERT, 200)) == 200
        assert await post_webhook(ingress, flows_body(STATUS_CHANGE, 100)) == 200
        stale = {**STATUS_CHANGE, "new_status": "DRAFT"}
        assert await post_webhook(ingress, flows_body(stale, 50)) == 200  # older: changes nothing

        async def settled() -> bool:
            async with engine.connect() as connection:
                stored = (await connection.execute(select(schema.account_events))).all()
            return len(stored) == 3

        await wait_until(settled, timeout=15)
    assert await flow_state(engine) == {
        "flow_id": "1234567890",
        "waba_id": WABA_ID,
        "status": "PUBLISHED",
        "status_at": 100.0,
        "alert_event": "ENDPOINT_LATENCY",
        "alert_state": "ACTIVATED",
        "alert_message": "The p90 latency of your endpoint is above 1s",
        "alert_at": 200.0,
    }
