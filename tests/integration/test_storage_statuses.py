"""Status updates stored on SQLite and PostgreSQL: history complete, state forward only."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import CUSTOMER, PHONE_NUMBER_ID, WABA_ID, status_webhook
from wapipe.ingress.split import split_body
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database
from wapipe.workers.status import StatusEvent, StatusHandler, decode


def events(body: bytes) -> list[StatusEvent]:
    return [decode(event.body) for event in split_body(body, time.time())]


def update(wamid: str, status: str, **fields: object) -> StatusEvent:
    (item,) = events(status_webhook(wamid, status, **fields))  # type: ignore[arg-type]
    return item


async def message_row(engine: AsyncEngine, wamid: str) -> dict[str, object]:
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(schema.messages).where(schema.messages.c.wamid == wamid)
            )
        ).one()
    return dict(row._mapping)


async def history(engine: AsyncEngine, wamid: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(schema.statuses.c.status).where(schema.statuses.c.wamid == wamid)
        )
        return sorted(rows.scalars())


async def test_a_status_is_stored_with_its_fields(engine: AsyncEngine) -> None:
    handler = StatusHandler(engine)
    outcome = await handler.store([update("wamid.A", "sent", conversation_id="conv-1")])
    assert (outcome.stored, outcome.duplicates) == (1, 0)

    row = await message_row(engine, "wamid.A")
    assert row["direction"] == "out"  # wapipe never sent it: the status creates the record
    assert row["status"] == "sent"
    assert row["wa_id"] == CUSTOMER
    assert row["phone_number_id"] == PHONE_NUMBER_ID
    assert row["waba_id"] == WABA_ID
    assert row["conversation_id"] == "conv-1"
    assert (row["pricing_billable"], row["pricing_model"], row["pricing_category"]) == (
        True,
        "PMP",
        "utility",
    )
    async with engine.connect() as connection:
        conversation = (await connection.execute(select(schema.conversations))).one()
    assert conversation.id == "conv-1"
    assert conversation.origin_type == "utility"
    assert conversation.expiration_timestamp == 1763990000 + 86400


async def test_a_failed_status_keeps_code_title_and_details(engine: AsyncEngine) -> None:
    handler = StatusHandler(engine)
    await handler.store([update("wamid.F", "failed", code=131026)])

    row = await message_row(engine, "wamid.F")
    assert row["status"] == "failed"
    assert (row["failure_code"], row["failure_title"], row["failure_details"]) == (
        131026,
        "title of 131026",
        "details of 131026",
    )
    async with engine.connect() as connection:
        stored = (await connection.execute(select(schema.statuses))).one()
    assert (stored.error_code, stored.error_title) == (131026, "title of 131026")


async def test_the_same_status_three_times_is_stored_once(engine: AsyncEngine) -> None:
    handler = StatusHandler(engine)
    body = status_webhook("wamid.D", "delivered")
    outcomes = [await handler.store(events(body)) for _ in range(3)]
    assert [(o.stored, o.duplicates) for o in outcomes] == [(1, 0), (0, 1), (0, 1)]
    assert await history(engine, "wamid.D") == ["delivered"]


ORDERS = sorted(set(itertools.permutations(["sent", "delivered", "read", "sent", "read"])))


@pytest.mark.parametrize("batch_size", [1, 2, 5])
async def test_every_order_of_statuses_ends_in_read_with_the_whole_history(
    engine: AsyncEngine, batch_size: int
) -> None:
    handler = StatusHandler(engine)
    for number, order in enumerate(ORDERS):
        wamid = f"wamid.{batch_size}.{number}"
        items = [update(wamid, status) for status in order]
        for start in range(0, len(items), batch_size):
            await handler.store(items[start : start + batch_size])
    async with engine.connect() as connection:
        states = (await connection.execute(select(schema.messages.c.status))).scalars().all()
        kept = (await connection.execute(select(schema.statuses.c.key))).scalars().all()
    assert len(states) == len(ORDERS)
    assert set(states) == {"read"}
    assert len(kept) == 3 * len(ORDERS)  # sent, delivered, read of each: duplicates once


async def test_a_late_delivered_after_failed_shows_delivered(engine: AsyncEngine) -> None:
    handler = StatusHandler(engine)
    await handler.store([update("wamid.M", "failed", code=131000)])
    await handler.store([update("wamid.M", "sent")])
    assert (await message_row(engine, "wamid.M"))["status"] == "failed"
    await handler.store([update("wamid.M", "delivered")])

    row = await message_row(engine, "wamid.M")
    assert row["status"] == "delivered"
    assert row["failure_code"] == 131000  # still kept
    assert await history(engine, "wamid.M") == ["delivered", "failed", "sent"]


async def test_the_lowest_failure_code_wins_in_any_order(engine: AsyncEngine) -> None:
    handler = StatusHandler(engine)
    for wamid, codes in (("wamid.X", (131047, 131026)), ("wamid.Y", (131026, 131047))):
        for code in codes:
            await handler.store([update(wamid, "failed", code=code)])
    assert (await message_row(engine, "wamid.X"))["failure_code"] == 131026
    assert (await message_row(engine, "wamid.Y"))["failure_code"] == 131026


async def test_an_unknown_status_is_kept_in_history_and_moves_nothing(engine: AsyncEngine) -> None:
    handler = StatusHandler(engine)
    await handler.store([update("wamid.U", "delivered"), update("wamid.U", "deleted_by_meta")])
    assert (await message_row(engine, "wamid.U"))["status"] == "delivered"
    assert await history(engine, "wamid.U") == ["deleted_by_meta", "delivered"]


async def test_two_workers_writing_the_same_messages_in_opposite_orders_do_not_deadlock(
    postgres_url: str,
) -> None:
    async with open_database(postgres_url) as engine:
        handler = StatusHandler(engine)
        for round_number in range(3):
            statuses = ("sent", "delivered")
            batches = [
                [update(f"wamid.L{round_number}.{n}", status) for n in range(300)]
                for status in statuses
            ]
            batches[1].reverse()
            outcomes = await asyncio.gather(*(handler.store(batch) for batch in batches))
            assert [outcome.stored for outcome in outcomes] == [300, 300]
        async with engine.connect() as connection:
            states = (await connection.execute(select(schema.messages.c.status))).scalars().all()
    assert states == ["delivered"] * 900
