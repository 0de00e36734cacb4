"""The sandbox plays username customers as Meta does (docs/cloudapi/usernames.md): webhooks
without a phone number, sends to a BSUID, BSUID and number changes, the 30-day rule."""

from __future__ import annotations

import json
from typing import Any

from tests.helpers import wait_until
from tests.integration.sandbox_support import (
    CUSTOMER,
    Receiver,
    SandboxClient,
    phone_number_id,
    send,
    text_to,
)
from wapipe.sandbox.keys import WORLD
from wapipe.sandbox.state import PHONE_SHARED_S
from wapipe.shared.schemas.jobs import is_bsuid
from wapipe.shared.schemas.webhook import MessagesValue, decode_envelope, decode_value

USERNAME_CUSTOMER = "5511988887777"


def values(receiver: Receiver) -> list[dict[str, Any]]:
    """Every ``messages`` value received, raw, checked to decode as wapipe decodes it."""
    found = []
    for body in receiver.bodies:
        for entry in decode_envelope(body).entry:
            for change in entry.changes:
                assert isinstance(decode_value(change.field, change.value), MessagesValue)
                found.append(json.loads(bytes(change.value)))
    return found


async def username_customer(sandbox: SandboxClient, **extra: Any) -> dict[str, Any]:
    response = await sandbox.post(
        "/_sandbox/customers",
        json={"wa_id": USERNAME_CUSTOMER, "name": "Joana", "username": "joana.r", **extra},
    )
    assert response.status == 200, await response.text()
    customer: dict[str, Any] = await response.json()
    return customer


async def writes(sandbox: SandboxClient, who: str, body: str = "oi") -> dict[str, Any]:
    response = await sandbox.post(
        f"/_sandbox/customers/{who}/messages", json={"type": "text", "body": body}
    )
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def test_a_username_customer_writes_with_no_phone_number_in_the_webhook(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    customer = await username_customer(sandbox)
    bsuid = customer["user_id"]
    assert is_bsuid(bsuid)
    await writes(sandbox, USERNAME_CUSTOMER)
    await wait_until(lambda: len(receiver[0].bodies) == 1, timeout=5)
    [value] = values(receiver[0])
    [contact] = value["contacts"]
    assert contact == {"profile": {"name": "Joana", "username": "joana.r"}, "user_id": bsuid}
    [message] = value["messages"]
    assert (message["from"], message["from_user_id"]) == (bsuid, bsuid)
    assert USERNAME_CUSTOMER not in json.dumps(value)


async def test_a_customer_without_a_username_shows_both_ids(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    await writes(sandbox, CUSTOMER)
    await wait_until(lambda: len(receiver[0].bodies) == 1, timeout=5)
    [value] = values(receiver[0])
    user_id = sandbox.app[WORLD].customers[CUSTOMER].user_id
    assert value["contacts"][0]["wa_id"] == CUSTOMER
    assert value["contacts"][0]["user_id"] == user_id
    assert value["messages"][0]["from"] == CUSTOMER


async def test_a_send_to_a_bsuid_is_accepted_and_its_statuses_name_no_phone_number(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    bsuid = (await username_customer(sandbox))["user_id"]
    await writes(sandbox, bsuid)  # opens the window; {wa_id} may be the BSUID
    body = {"messaging_product": "whatsapp", "recipient": bsuid, "type": "text"}
    status, answer = await send(sandbox, body | {"text": {"body": "olá"}})
    assert status == 200, answer
    assert answer["contacts"] == [{"input": bsuid, "user_id": bsuid}]
    wamid = answer["messages"][0]["id"]
    await wait_until(lambda: {s for _, s, _ in receiver[0].statuses()} >= {"read"}, timeout=5)
    for found, _, raw in receiver[0].statuses():
        assert found == wamid
        assert "recipient_id" not in raw
        assert raw["recipient_user_id"] == bsuid


async def test_a_malformed_bsuid_recipient_is_refused_as_an_invalid_value(
    sandbox: SandboxClient,
) -> None:
    body = {"messaging_product": "whatsapp", "recipient": "us-1234", "type": "text"}
    status, answer = await send(sandbox, body | {"text": {"body": "x"}})
    assert (status, answer["error"]["code"]) == (400, 131009)


async def test_a_send_to_the_phone_number_shows_it_to_that_business_for_30_days(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    await username_customer(sandbox)
    await writes(sandbox, USERNAME_CUSTOMER)  # hidden: no exchange by phone yet
    status, _ = await send(sandbox, text_to(USERNAME_CUSTOMER))
    assert status == 200
    await writes(sandbox, USERNAME_CUSTOMER)  # now shown: the business wrote to the number
    await wait_until(lambda: len([v for v in values(receiver[0]) if "messages" in v]) == 2, 5)
    first, second = [v for v in values(receiver[0]) if "messages" in v]
    assert "wa_id" not in first["contacts"][0]
    assert second["contacts"][0]["wa_id"] == USERNAME_CUSTOMER
    world = sandbox.app[WORLD]
    world.clock.advance(PHONE_SHARED_S + 1)
    assert not world.customers[USERNAME_CUSTOMER].phone_shared(
        phone_number_id(sandbox), 0.0 + world.clock.now()
    )


async def test_the_contact_book_keeps_the_phone_number_shown(sandbox: SandboxClient) -> None:
    await username_customer(sandbox, in_contact_book=True)
    customer = sandbox.app[WORLD].customers[USERNAME_CUSTOMER]
    assert customer.phone_shared(phone_number_id(sandbox), sandbox.app[WORLD].clock.now())


async def test_a_bsuid_change_arrives_as_user_changed_user_id_without_a_phone_number(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    old = (await username_customer(sandbox))["user_id"]
    response = await sandbox.post(f"/_sandbox/customers/{USERNAME_CUSTOMER}/user_id")
    assert response.status == 200, await response.text()
    new = (await response.json())["user_id"]
    assert new != old
    await wait_until(lambda: len(receiver[0].bodies) == 1, timeout=5)
    [value] = values(receiver[0])
    assert "contacts" not in value  # system messages carry none
    [message] = value["messages"]
    assert message["type"] == "system"
    assert message["system"]["type"] == "user_changed_user_id"
    assert (message["system"]["user_id"], message["system"]["previous_user_id"]) == (new, old)
    assert USERNAME_CUSTOMER not in json.dumps(value)


async def test_a_number_change_shown_arrives_as_user_changed_number_with_a_new_bsuid(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    old = sandbox.app[WORLD].customers[CUSTOMER].user_id
    response = await sandbox.post(
        f"/_sandbox/customers/{CUSTOMER}/number", json={"new_wa_id": "16315559999"}
    )
    assert response.status == 200, await response.text()
    await wait_until(lambda: len(receiver[0].bodies) == 1, timeout=5)
    [message] = values(receiver[0])[0]["messages"]
    system = message["system"]
    assert (message["from"], system["type"], system["wa_id"]) == (
        CUSTOMER,
        "user_changed_number",
        "16315559999",
    )
    assert system["previous_user_id"] == old
    assert system["user_id"] != old


async def test_a_hidden_number_change_arrives_as_a_bsuid_change_only(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    await username_customer(sandbox)
    response = await sandbox.post(
        f"/_sandbox/customers/{USERNAME_CUSTOMER}/number", json={"new_wa_id": "5511911112222"}
    )
    assert response.status == 200
    await wait_until(lambda: len(receiver[0].bodies) == 1, timeout=5)
    [value] = values(receiver[0])
    assert value["messages"][0]["system"]["type"] == "user_changed_user_id"
    assert "5511911112222" not in json.dumps(value)
