"""Outbound messages keep their type and body (record_outbound), merged with their statuses in any
order and never moved back; `wapipe conversation` and `wapipe jobs` read them, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from tests.helpers import CUSTOMER, PHONE_NUMBER_ID, inbound_text_row, status_webhook
from tests.integration.test_storage_statuses import events, message_row
from wapipe.shared.storage.messages import (
    OutboundRow,
    conversation,
    record_outbound,
    store_inbound,
)
from wapipe.shared.storage.send_jobs import ACCEPTED, FAILED, Change, NewJob, change, claim, latest
from wapipe.workers.status import StatusHandler

TEXT: dict[str, object] = {"type": "text", "text": {"body": "Your order has shipped"}}


def outbound(wamid: str, message: dict[str, object], at: float) -> OutboundRow:
    return OutboundRow(
        wamid=wamid,
        phone_number_id=PHONE_NUMBER_ID,
        wa_id=CUSTOMER,
        type=str(message["type"]),
        payload=json.dumps(message),
        received_at=at,
    )


async def record(engine: AsyncEngine, *rows: OutboundRow) -> None:
    async with engine.begin() as connection:
        await record_outbound(connection, rows)


async def test_a_send_recorded_after_its_read_status_keeps_read_and_gains_its_body(
    engine: AsyncEngine,
) -> None:
    await StatusHandler(engine).store(events(status_webhook("wamid.R", "read")))
    await record(engine, outbound("wamid.R", TEXT, time.time()))
    await record(engine, outbound("wamid.R", TEXT, time.time()))  # a repeat changes nothing

    row = await message_row(engine, "wamid.R")
    assert (row["direction"], row["type"], row["status"]) == ("out", "text", "read")
    assert json.loads(str(row["payload"])) == TEXT


async def test_a_send_recorded_first_is_accepted_then_moves_forward_only(
    engine: AsyncEngine,
) -> None:
    await record(engine, outbound("wamid.F", TEXT, time.time()))
    assert (await message_row(engine, "wamid.F"))["status"] == "accepted"
    await StatusHandler(engine).store(events(status_webhook("wamid.F", "delivered")))
    await record(engine, outbound("wamid.F", TEXT, time.time()))
    row = await message_row(engine, "wamid.F")
    assert (row["type"], row["status"]) == ("text", "delivered")


async def test_a_failed_status_before_the_record_stays_failed(engine: AsyncEngine) -> None:
    await StatusHandler(engine).store(events(status_webhook("wamid.X", "failed", code=131047)))
    await record(engine, outbound("wamid.X", TEXT, time.time()))
    row = await message_row(engine, "wamid.X")
    assert (row["status"], row["failure_code"], row["type"]) == ("failed", 131047, "text")


async def wapipe(database_url: str, *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wapipe",
        *args,
        env={**os.environ, "WAPIPE_DATABASE_URL": database_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_wapipe_conversation_prints_both_directions_in_order_with_statuses(
    engine: AsyncEngine, database_url: str
) -> None:
    now = time.time()
    menu: dict[str, object] = {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "How can we help?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "h", "title": "Hours"}}]},
        },
    }
    await _inbound(engine, "wamid.in1", "hello", now - 30)
    await record(engine, outbound("wamid.out1", TEXT, now - 20))
    await record(engine, outbound("wamid.out2", menu, now - 10))
    await StatusHandler(engine).store(events(status_webhook("wamid.out1", "read")))
    await StatusHandler(engine).store(events(status_webhook("wamid.out2", "failed", code=131047)))

    code, out = await wapipe(database_url, "conversation", CUSTOMER)
    assert code == 0
    lines = [line[9:] for line in out.splitlines()]  # without the time of day
    assert lines == [
        "<- text        hello",
        "-> text        Your order has shipped  (read)",
        "-> interactive How can we help? [Hours]  (failed: 131047 title of 131047)",
    ]
    async with engine.connect() as connection:
        assert [line.wamid for line in await conversation(connection, CUSTOMER, limit=2)] == [
            "wamid.out1",
            "wamid.out2",
        ]


async def _inbound(engine: AsyncEngine, wamid: str, text: str, at: float) -> None:
    message = {"from": CUSTOMER, "id": wamid, "type": "text", "text": {"body": text}}
    row = inbound_text_row(
        wamid, sender=CUSTOMER, at=at, payload=json.dumps(message), phone_number_id=PHONE_NUMBER_ID
    )
    async with engine.begin() as connection:
        await store_inbound(connection, [row], [])


async def test_wapipe_jobs_list_and_show(engine: AsyncEngine, database_url: str) -> None:
    now = time.time()
    jobs = [
        NewJob(
            idempotency_key=key,
            phone_number_id=PHONE_NUMBER_ID,
            recipient=CUSTOMER,
            state="queued",
            callback_data=None,
            job=json.dumps({"kind": "send", "idempotency_key": key}),
            created_at=now,
            updated_at=now + offset,
        )
        for offset, key in enumerate(("order-1", "order-2"))
    ]
    async with engine.begin() as connection:
        await claim(connection, jobs)
        sending = frozenset({"queued"})
        accepted = Change(key="order-1", state=ACCEPTED, at=now, only_from=sending, wamid="w.1")
        await change(connection, [accepted], token=now + 1)
        failed = Change(
            key="order-2",
            state=FAILED,
            at=now,
            only_from=sending,
            error_code=131026,
            error_title="Message Undeliverable.",
        )
        await change(connection, [failed], token=now + 2)
        assert [job.idempotency_key for job in await latest(connection, 5)] == [
            "order-2",
            "order-1",
        ]

    code, out = await wapipe(database_url, "jobs", "list")
    assert code == 0
    header, *lines = out.splitlines()
    assert header.split()[:3] == ["updated", "state", "key"]
    assert [line.split()[1:3] for line in lines] == [
        ["failed", "order-2"],
        ["accepted", "order-1"],
    ]
    assert lines[0].endswith("131026 Message Undeliverable.")
    code, out = await wapipe(database_url, "jobs", "list", "--state", "accepted")
    assert [line.split()[2] for line in out.splitlines()[1:]] == ["order-1"]
    code, out = await wapipe(database_url, "jobs", "show", "order-2")
    assert code == 0
    assert "state:    failed" in out
    assert "error:    131026 Message Undeliverable." in out
    code, out = await wapipe(database_url, "jobs", "show", "no-such-key")
    assert (code, out) == (1, "wapipe jobs show: no job with the key 'no-such-key'\n")


async def test_an_outbound_message_not_recorded_yet_shows_its_send_jobs_body(
    engine: AsyncEngine, database_url: str
) -> None:
    now = time.time()
    job = {"kind": "send", "idempotency_key": "k-1", "message": TEXT}
    async with engine.begin() as connection:
        await claim(
            connection,
            [
                NewJob(
                    idempotency_key="k-1",
                    phone_number_id=PHONE_NUMBER_ID,
                    recipient=CUSTOMER,
                    state="queued",
                    callback_data=None,
                    job=json.dumps(job),
                    created_at=now,
                    updated_at=now,
                )
            ],
        )
        accepted = Change(
            key="k-1", state=ACCEPTED, at=now, only_from=frozenset({"queued"}), wamid="wamid.J"
        )
        await change(connection, [accepted], token=now + 1)
    await StatusHandler(engine).store(events(status_webhook("wamid.J", "delivered")))

    code, out = await wapipe(database_url, "conversation", CUSTOMER)
    assert code == 0
    assert [line[9:] for line in out.splitlines()] == [
        "-> text        Your order has shipped  (delivered)"
    ]
