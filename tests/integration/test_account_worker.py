"""The account worker against the real RabbitMQ, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import aio_pika
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.conftest import IngressClient, with_settings
from tests.helpers import WABA_ID, sample_bodies, wait_until
from tests.integration.worker_support import count, metric, post_webhook, running_worker
from wapipe.ingress.split import split_body
from wapipe.shared import topology
from wapipe.shared.schemas.changes import TemplateChange
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database
from wapipe.workers import account


@pytest.fixture
def worker_settings(settings: Settings, database_url: str) -> Settings:
    return with_settings(settings, database_url=database_url)


@pytest.fixture
async def engine(worker_settings: Settings) -> AsyncIterator[AsyncEngine]:
    async with open_database(worker_settings.database_url) as opened:
        yield opened


def account_keys(bodies: list[bytes]) -> set[str]:
    return {
        event.message_id
        for body in bodies
        for event in split_body(body, time.time())
        if event.kind == "account"
    }


def template_status(template_id: int, event: str, entry_time: int) -> bytes:
    value = {
        "event": event,
        "message_template_id": template_id,
        "message_template_name": "order_shipped",
        "message_template_language": "en_US",
        "reason": "NONE",
    }
    change = {"field": "message_template_status_update", "value": value}
    entry = {"id": WABA_ID, "time": entry_time, "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


async def test_every_account_sample_is_stored_and_templates_and_numbers_kept_current(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    bodies = [path.read_bytes() for path in sample_bodies()]
    expected = account_keys(bodies)
    assert len(expected) >= 7
    async with running_worker(account.KIND, worker_settings):
        for body in bodies:
            assert await post_webhook(ingress, body) == 200

        async def all_stored() -> bool:
            async with engine.connect() as connection:
                keys = await connection.execute(select(schema.account_events.c.key))
                return set(keys.scalars()) == expected

        await wait_until(all_stored, timeout=15)
    async with engine.connect() as connection:
        templates = {
            row.template_id: row for row in await connection.execute(select(schema.templates))
        }
        numbers = {
            row.display_phone_number: row
            for row in await connection.execute(select(schema.phone_numbers))
        }
    shipped = templates["594425479261597"]
    assert (shipped.name, shipped.language) == ("order_shipped", "en_US")
    assert (shipped.status, shipped.status_reason, shipped.quality) == (
        "APPROVED",
        "NONE",
        "YELLOW",
    )
    assert templates["594425479261598"].category == "MARKETING"
    number = numbers["15550101234"]
    assert (number.quality_event, number.messaging_tier) == ("THROUGHPUT_UPGRADE", "TIER_10K")
    assert number.account_event == "ACCOUNT_VIOLATION"
    assert number.quality_at == 1763990400  # the entry's time


@pytest.mark.parametrize("order", [("APPROVED", "PAUSED"), ("PAUSED", "APPROVED")])
async def test_a_template_status_moves_to_the_latest_change_in_any_order(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine, order: tuple[str, str]
) -> None:
    at = {"APPROVED": 1763990000, "PAUSED": 1763990600}
    async with running_worker(account.KIND, worker_settings):
        for event in order:
            assert await post_webhook(ingress, template_status(77, event, at[event])) == 200

        async def both_stored() -> bool:
            return await count(engine, schema.account_events) == 2

        await wait_until(both_stored, timeout=10)
    async with engine.connect() as connection:
        row = (await connection.execute(select(schema.templates))).one()
    assert (row.status, row.status_at) == ("PAUSED", 1763990600)


async def test_changes_are_published_once_committed_and_repeats_stored_once(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    body = template_status(88, "REJECTED", 1763990000)
    connection = await aio_pika.connect(worker_settings.amqp_url)
    async with connection, running_worker(account.KIND, worker_settings) as metrics:
        channel = await connection.channel()
        follower = await channel.declare_queue("template-watch", exclusive=True)
        await follower.bind(topology.EVENTS_EXCHANGE, "template.#")
        for _ in range(3):
            assert await post_webhook(ingress, body) == 200

        async def all_seen() -> bool:
            return await metric(metrics, "wapipe_worker_duplicates_total") == 2

        await wait_until(all_seen, timeout=10)
        published = [await follower.get(timeout=5) for _ in range(3)]
    changes = [TemplateChange(**json.loads(message.body)) for message in published]
    assert {(change.template_id, change.status) for change in changes} == {("88", "REJECTED")}
    assert {message.routing_key for message in published} == {"template.updated"}
    assert len({message.message_id for message in published}) == 1  # one key, for dedup
    assert await count(engine, schema.account_events) == 1


def echo_with_metadata() -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550101234", "phone_number_id": "118765432109876"},
        "message_echoes": [
            {
                "from": "15550101234",
                "to": "16315551181",
                "id": "wamid.ECHO",
                "timestamp": "1763990000",
                "type": "text",
                "text": {"body": "sent from the app"},
            }
        ],
    }
    change = {"field": "smb_message_echoes", "value": value}
    entry = {"id": WABA_ID, "changes": [change]}
    return json.dumps({"object": "whatsapp_business_account", "entry": [entry]}).encode()


async def test_other_fields_with_metadata_store_their_phone_number_id(
    ingress: IngressClient, worker_settings: Settings, engine: AsyncEngine
) -> None:
    bodies = {
        "user_preferences": next(
            path for path in sample_bodies() if path.name == "user_preferences_stop_marketing.json"
        ).read_bytes(),
        "smb_message_echoes": echo_with_metadata(),
        "message_template_status_update": template_status(99, "APPROVED", 1763990000),
    }
    async with running_worker(account.KIND, worker_settings):
        for body in bodies.values():
            assert await post_webhook(ingress, body) == 200

        async def all_stored() -> bool:
            return await count(engine, schema.account_events) == len(bodies)

        await wait_until(all_stored, timeout=10)
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(schema.account_events.c.field, schema.account_events.c.phone_number_id)
        )
        stored = {row.field: row.phone_number_id for row in rows}
    assert stored == {
        "user_preferences": "118765432109876",
        "smb_message_echoes": "118765432109876",
        "message_template_status_update": None,  # a template has no number
    }
