"""One customer per person across their ids (shared/storage/customers.py), on SQLite and
PostgreSQL: ids seen apart are two customers until a webhook shows them together; changes of
number and BSUID keep the customer; a status to a BSUID names the same customer."""

from __future__ import annotations

import asyncio
import json
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import CUSTOMER, PHONE_NUMBER_ID, inbound_text_row
from tests.integration.test_conversation_storage import wapipe
from wapipe.ingress.split import split_body
from wapipe.shared.storage import schema
from wapipe.shared.storage.customers import identities_of, identity_kind, link, sighting
from wapipe.shared.storage.messages import InboundRow, conversation, store_inbound
from wapipe.workers import status
from wapipe.workers.status import StatusHandler

BSUID = "US.13491208655302741918"
NEW_BSUID = "US.99991208655302741918"
PARENT = "US.ENT.11815799212886844830"
NEW_PHONE = "16315559999"


async def linked(engine: AsyncEngine, *sightings: set[str | None]) -> None:
    async with engine.begin() as connection:
        await link(connection, [sighting(s) for s in sightings], time.time())


async def customers(engine: AsyncEngine) -> dict[str, str]:
    table = schema.customer_identities.c
    async with engine.connect() as connection:
        rows = await connection.execute(select(table.identity, table.customer_id))
        return {row.identity: row.customer_id for row in rows}


async def ids_of(engine: AsyncEngine, identity: str) -> set[str]:
    async with engine.connect() as connection:
        return await identities_of(connection, identity)


async def test_ids_seen_apart_are_two_customers_until_seen_together(engine: AsyncEngine) -> None:
    await linked(engine, {CUSTOMER}, {BSUID})
    assert len(set((await customers(engine)).values())) == 2
    await linked(engine, {CUSTOMER, BSUID, PARENT})
    assert len(set((await customers(engine)).values())) == 1
    assert await ids_of(engine, PARENT) == {CUSTOMER, BSUID, PARENT}


async def test_a_bsuid_change_and_a_number_change_keep_one_customer(engine: AsyncEngine) -> None:
    await linked(engine, {CUSTOMER, BSUID})
    await linked(engine, {BSUID, NEW_BSUID})  # user_changed_user_id: previous and new
    await linked(engine, {CUSTOMER, NEW_PHONE})  # user_changed_number: old and new number
    assert await ids_of(engine, NEW_PHONE) == {CUSTOMER, BSUID, NEW_BSUID, NEW_PHONE}
    assert len(set((await customers(engine)).values())) == 1


async def test_linking_again_changes_nothing(engine: AsyncEngine) -> None:
    await linked(engine, {CUSTOMER, BSUID})
    before = await customers(engine)
    await linked(engine, {CUSTOMER, BSUID}, {BSUID}, {CUSTOMER})
    assert await customers(engine) == before


async def test_two_workers_linking_one_person_at_once_end_on_one_customer(
    engine: AsyncEngine,
) -> None:
    await asyncio.gather(linked(engine, {CUSTOMER, BSUID}), linked(engine, {BSUID, NEW_BSUID}))
    assert len(set((await customers(engine)).values())) == 1


async def test_one_batch_merging_customers_keeps_its_known_sightings_on_them(
    engine: AsyncEngine,
) -> None:
    # The batch's one look-up sees {CUSTOMER} and {BSUID} as known customers; the sighting tying
    # them merges the two in the same batch, and a new number joins them: one customer at the end.
    await linked(engine, {CUSTOMER}, {BSUID})
    await linked(engine, {CUSTOMER}, {CUSTOMER, BSUID}, {BSUID}, {BSUID, NEW_PHONE})
    owners = await customers(engine)
    assert owners.keys() == {CUSTOMER, BSUID, NEW_PHONE}
    assert len(set(owners.values())) == 1


async def test_a_batch_of_first_contacts_beside_ids_seen_twice_links_each_person_once(
    engine: AsyncEngine,
) -> None:
    # Three people new to the store; two of the batch's sightings share BSUID, so those are one
    # person (linked one by one), while the lone first contacts are linked together.
    others = ["447700900001", "447700900002"]
    await linked(engine, {CUSTOMER, BSUID}, {others[0]}, {BSUID, NEW_BSUID}, {others[1], PARENT})
    owners = await customers(engine)
    assert owners == {
        CUSTOMER: CUSTOMER,
        BSUID: CUSTOMER,
        NEW_BSUID: CUSTOMER,
        others[0]: others[0],
        others[1]: min(others[1], PARENT),
        PARENT: min(others[1], PARENT),
    }


async def test_an_unknown_id_is_only_itself(engine: AsyncEngine) -> None:
    assert await ids_of(engine, "447700900123") == {"447700900123"}


def test_each_id_has_its_kind() -> None:
    assert [identity_kind(i) for i in (CUSTOMER, BSUID, PARENT)] == [
        "phone",
        "bsuid",
        "parent_bsuid",
    ]


def bsuid_status(wamid: str, state: str) -> bytes:
    """A status of a message sent to a BSUID: no recipient_id (docs/cloudapi/usernames.md)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550101234", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": [
            {"id": wamid, "status": state, "timestamp": "1763990000", "recipient_user_id": BSUID}
        ],
    }
    change = {"field": "messages", "value": value}
    return json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change]}]}
    ).encode()


async def test_statuses_of_a_send_to_a_bsuid_belong_to_the_customers_conversation(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as connection:
        row = inbound_text_row(
            "wamid.IN",
            sender=CUSTOMER,
            at=1763989000.0,  # before the status's 1763990000
            payload='{"text": {"body": "hi"}}',
            phone_number_id=PHONE_NUMBER_ID,
        )
        await store_inbound(connection, [row], [])
    await linked(engine, {CUSTOMER, BSUID})
    body = bsuid_status("wamid.OUT", "delivered")
    await StatusHandler(engine).store(
        [status.decode(e.body) for e in split_body(body, time.time())]
    )
    async with engine.connect() as connection:
        by_phone = await conversation(connection, CUSTOMER)
        by_bsuid = await conversation(connection, BSUID)
    assert [line.wamid for line in by_phone] == ["wamid.IN", "wamid.OUT"]
    assert by_bsuid == by_phone
    assert by_phone[1].status == "delivered"


async def test_wapipe_conversation_finds_the_one_customer_by_bsuid_or_any_phone_format(
    engine: AsyncEngine, database_url: str
) -> None:
    async with engine.begin() as connection:
        await store_inbound(connection, [inbound("wamid.BY-PHONE", CUSTOMER, "hi")], [])
        await store_inbound(connection, [inbound("wamid.BY-BSUID", NEW_BSUID, "again")], [])
    await linked(engine, {CUSTOMER, BSUID}, {BSUID, NEW_BSUID})
    outputs = []
    for who in (NEW_BSUID, "+1 (631) 555-1181", BSUID):
        code, out = await wapipe(database_url, "conversation", who)
        assert code == 0, out
        outputs.append(out)
    assert outputs[0] == outputs[1] == outputs[2]
    assert "hi" in outputs[0]
    assert "again" in outputs[0]


def inbound(wamid: str, sender: str, body: str) -> InboundRow:
    return inbound_text_row(
        wamid,
        sender=sender,
        payload=json.dumps({"type": "text", "text": {"body": body}}),
        phone_number_id=PHONE_NUMBER_ID,
        received_at=1763989000.0 + len(body),
    )
