"""A username customer's whole conversation, through the sandbox, the ingress and every worker:
they write with no phone number, the example bot answers to their BSUID, the statuses come, their
BSUID changes, they write again; all of it is one customer (shared/storage/customers.py), and
``wapipe conversation`` by either BSUID shows it. On SQLite and PostgreSQL."""

from __future__ import annotations

import contextlib
from typing import Any

from sqlalchemy import select

from tests.conftest import with_settings
from tests.helpers import wait_until
from tests.integration.sender_support import System, sandbox_system
from tests.integration.worker_support import running_worker
from wapipe.sandbox.keys import WORLD
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema
from wapipe.shared.storage.customers import identities_of
from wapipe.shared.storage.database import open_database
from wapipe.shared.storage.messages import ConversationLine, conversation
from wapipe.workers import message, sender, status

PHONE = "5511977776666"  # the customer's number, never shown to the business
BOT = "wapipe.examples.echo_bot:handle"


async def lines(database_url: str, customer: str) -> list[ConversationLine]:
    async with open_database(database_url) as engine, engine.connect() as connection:
        return await conversation(connection, customer)


async def owners(database_url: str) -> dict[str, str]:
    table = schema.customer_identities.c
    async with open_database(database_url) as engine, engine.connect() as connection:
        rows = await connection.execute(select(table.identity, table.customer_id))
        return {row.identity: row.customer_id for row in rows}


async def customer_writes(system: System, who: str, body: str) -> None:
    response = await system.sandbox.post(
        f"/_sandbox/customers/{who}/messages", json={"type": "text", "body": body}
    )
    assert response.status == 200, await response.text()


def answered_and_read(found: list[ConversationLine], replies: int) -> bool:
    out = [line for line in found if line.direction == "out"]
    return len(out) == replies and all(line.status == "read" for line in out)


async def test_a_username_customers_conversation_is_one_customer_across_a_bsuid_change(
    settings: Settings, database_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        system = await stack.enter_async_context(sandbox_system(settings, database_url))
        workers = with_settings(system.settings, message_handlers=(BOT,))
        for kind in (message.KIND, status.KIND, sender.KIND):
            await stack.enter_async_context(running_worker(kind, workers))
        made = await system.sandbox.post(
            "/_sandbox/customers", json={"wa_id": PHONE, "name": "Joana", "username": "joana.r"}
        )
        first: str = (await made.json())["user_id"]

        await customer_writes(system, PHONE, "oi")

        async def first_answer_read() -> bool:
            return answered_and_read(await lines(database_url, first), 1)

        await wait_until(first_answer_read, timeout=30)
        [reply] = system.sends()
        assert reply.to == first  # the bot answered to the BSUID: no number was shown
        assert reply.to_bsuid

        changed = await system.sandbox.post(f"/_sandbox/customers/{PHONE}/user_id")
        second: str = (await changed.json())["user_id"]
        await customer_writes(system, second, "de novo")

        async def second_answer_read() -> bool:
            return answered_and_read(await lines(database_url, second), 2)

        await wait_until(second_answer_read, timeout=30)

    by_first, by_second = await lines(database_url, first), await lines(database_url, second)
    assert by_first == by_second
    summary: list[tuple[str, Any]] = [(line.direction, line.type) for line in by_first]
    assert summary.count(("in", "text")) == 2
    assert summary.count(("out", "text")) == 2
    assert ("in", "system") in summary  # the change itself, in its place
    ids = await owners(database_url)
    assert ids[first] == ids[second]  # one customer
    assert PHONE not in ids  # never shown to the business, never stored
    async with open_database(database_url) as engine, engine.connect() as connection:
        assert await identities_of(connection, second) == {first, second}
    assert system.sandbox.app[WORLD].customers[PHONE].user_id == second
