"""Real clients read the sandbox's username customers: pywa's own webhook parser takes every
webhook the sandbox sends about one (a message without a phone number, statuses of a send to
their BSUID, a BSUID change, a number change) without error; pywa and heyoo send to a BSUID.

Covered: pywa 4.5 ``WhatsApp.webhook_update_handler`` into ``Message``, ``MessageStatus`` and
``PhoneNumberChange``; ``send_message`` to a BSUID. heyoo 0.1.2: ``get_name``, ``get_message``,
``get_message_id``, ``get_message_type``, ``send_custom_json`` with ``recipient``. Left out:
heyoo's ``get_mobile``, which reads ``contacts[0]["wa_id"]`` and so cannot work for a customer
whose number Meta does not share (see the test saying so).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pywa import handlers
from pywa.client import WhatsApp
from pywa.types.message import Message
from pywa.types.message_status import MessageStatus
from pywa.types.system import PhoneNumberChange

from tests.conformance.clients import Sandboxed, heyoo_client, pywa_client, running_sandbox
from tests.helpers import wait_until
from wapipe.sandbox.keys import WORLD

PHONE = "5511988887777"


@pytest.fixture
async def running() -> AsyncIterator[Sandboxed]:
    async with running_sandbox() as sandboxed:
        made = await sandboxed.sandbox.post(
            "/_sandbox/customers", json={"wa_id": PHONE, "name": "Joana", "username": "joana.r"}
        )
        assert made.status == 200
        yield sandboxed


class Parsed:
    """pywa with a handler for each update a username customer brings; ``parse`` gives what
    the handlers got for one webhook body. pywa logs (not raises) what it cannot parse, so the
    test's end checks its log stayed quiet."""

    def __init__(self, wa: WhatsApp) -> None:
        self.wa = wa
        self.got: list[Any] = []
        wa.add_handlers(
            handlers.MessageHandler(self._take),
            handlers.MessageStatusHandler(self._take),
            handlers.PhoneNumberChangeHandler(self._take),
        )

    def _take(self, _: WhatsApp, update: Any) -> None:
        self.got.append(update)

    def parse(self, body: bytes) -> list[Any]:
        self.got = []
        assert self.wa.webhook_update_handler(body) == ("ok", 200)
        return self.got


@pytest.fixture
def wa(running: Sandboxed) -> Iterator[WhatsApp]:
    with pywa_client(running.sandbox) as client:
        yield client


@pytest.fixture
def pywa_reads(wa: WhatsApp) -> Parsed:
    return Parsed(wa)


@pytest.fixture(autouse=True)
def pywa_log(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.WARNING, logger="pywa")
    yield
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pywa")] == []


async def customer_writes(running: Sandboxed, body: str = "oi") -> bytes:
    before = len(running.receiver.bodies)
    response = await running.sandbox.post(
        f"/_sandbox/customers/{PHONE}/messages", json={"type": "text", "body": body}
    )
    assert response.status == 200
    await wait_until(lambda: len(running.receiver.bodies) > before, timeout=5)
    return running.receiver.bodies[before]


def bsuid(running: Sandboxed) -> str:
    return running.sandbox.app[WORLD].customers[PHONE].user_id


async def test_pywa_reads_a_message_from_a_username_customer_with_no_phone_number(
    running: Sandboxed, wa: WhatsApp, pywa_reads: Parsed
) -> None:
    body = await customer_writes(running)
    [message] = pywa_reads.parse(body)
    assert isinstance(message, Message)
    assert message.text == "oi"
    user = message.from_user
    assert (user.bsuid, user.wa_id, user.username, user.name) == (
        bsuid(running),
        None,
        "joana.r",
        "Joana",
    )


async def test_pywa_sends_to_a_bsuid_and_reads_the_statuses_that_follow(
    running: Sandboxed, wa: WhatsApp, pywa_reads: Parsed
) -> None:
    await customer_writes(running)  # opens the window
    sent = await asyncio.to_thread(wa.send_message, bsuid(running), "olá")
    assert sent.id in running.sandbox.app[WORLD].sent
    await wait_until(lambda: {s for _, s, _ in running.receiver.statuses()} >= {"read"}, 5)
    bodies = [b for b in running.receiver.bodies if b"statuses" in b]
    statuses = [update for body in bodies for update in pywa_reads.parse(body)]
    assert all(isinstance(s, MessageStatus) for s in statuses)
    assert {s.id for s in statuses} == {sent.id}
    assert {s.from_user.bsuid for s in statuses} == {bsuid(running)}
    assert {s.from_user.wa_id for s in statuses} == {None}  # sent to a BSUID: no number


async def test_pywa_reads_a_bsuid_change(running: Sandboxed, pywa_reads: Parsed) -> None:
    old = bsuid(running)
    response = await running.sandbox.post(f"/_sandbox/customers/{PHONE}/user_id")
    new = (await response.json())["user_id"]
    await wait_until(lambda: len(running.receiver.bodies) == 1, timeout=5)
    [change] = pywa_reads.parse(running.receiver.bodies[0])
    assert isinstance(change, PhoneNumberChange)
    # pywa names the message's "from" its old_wa_id; for a BSUID change Meta sends no phone
    # number (docs/cloudapi/usernames.md), so it holds the previous BSUID there: right for us,
    # a misnomer in pywa.
    assert (change.old_wa_id, change.new_user_id, change.new_wa_id) == (old, new, None)


async def test_pywa_reads_a_number_change(running: Sandboxed, pywa_reads: Parsed) -> None:
    response = await running.sandbox.post(
        "/_sandbox/customers/16315551181/number", json={"new_wa_id": "16315559999"}
    )
    assert response.status == 200
    await wait_until(lambda: len(running.receiver.bodies) == 1, timeout=5)
    [change] = pywa_reads.parse(running.receiver.bodies[0])
    assert isinstance(change, PhoneNumberChange)
    assert (change.old_wa_id, change.new_wa_id) == ("16315551181", "16315559999")
    assert change.new_user_id == running.sandbox.app[WORLD].customers["16315559999"].user_id


async def test_heyoo_reads_a_username_customers_message_but_for_the_number_it_does_not_have(
    running: Sandboxed,
) -> None:
    heyoo = heyoo_client(running.sandbox)
    data = json.loads(await customer_writes(running, "bom dia"))
    assert heyoo.is_message(data)
    assert (heyoo.get_name(data), heyoo.get_message(data)) == ("Joana", "bom dia")
    assert heyoo.get_message_type(data) == "text"
    assert heyoo.get_message_id(data).startswith("wamid.")
    # heyoo 0.1.2 predates usernames: get_mobile reads contacts[0]["wa_id"], which Meta omits
    # for a username customer who shares no number. Meta is right (docs/cloudapi/usernames.md);
    # the customer's id is contacts[0]["user_id"].
    with pytest.raises(KeyError):
        heyoo.get_mobile(data)
    assert data["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"] == bsuid(running)


async def test_heyoo_sends_to_a_bsuid_as_recipient(running: Sandboxed) -> None:
    await customer_writes(running)
    heyoo = heyoo_client(running.sandbox)
    job = {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "recipient": bsuid(running),
        "type": "text",
        "text": {"body": "olá"},
    }
    answer = await asyncio.to_thread(heyoo.send_custom_json, job)
    assert answer["contacts"] == [{"input": bsuid(running), "user_id": bsuid(running)}]
    assert answer["messages"][0]["id"] in running.sandbox.app[WORLD].sent
