"""Simulated customers: every inbound kind arrives as a signed webhook; media has real bytes."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

import pytest
from yarl import URL

from tests.helpers import wait_until
from tests.integration.sandbox_support import (
    CUSTOMER,
    GRAPH,
    TOKEN,
    Receiver,
    SandboxClient,
    send,
    text_to,
)
from wapipe.sandbox.customers import INBOUND_KINDS
from wapipe.sandbox.media_files import MEDIA_KINDS
from wapipe.shared.schemas.webhook import MessagesValue, decode_envelope, decode_value

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def messages(receiver: Receiver) -> list[tuple[Any, dict[str, Any]]]:
    """(typed message, raw message) of every inbound message received."""
    found = []
    for body in receiver.bodies:
        for entry in decode_envelope(body).entry:
            for change in entry.changes:
                value = decode_value(change.field, change.value)
                if isinstance(value, MessagesValue):
                    raw = json.loads(bytes(change.value)).get("messages", [])
                    found += list(zip(value.messages, raw, strict=True))
    return found


async def customer_sends(client: SandboxClient, kind: str, **spec: Any) -> dict[str, Any]:
    response = await client.post(
        f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": kind, **spec}
    )
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


@pytest.mark.parametrize("kind", INBOUND_KINDS)
async def test_every_inbound_kind_arrives_signed_and_decodes(
    sandbox: SandboxClient, receiver: tuple[Receiver, str], kind: str
) -> None:
    answer = await customer_sends(sandbox, kind)
    await wait_until(lambda: len(messages(receiver[0])) == 1, timeout=5)
    [(message, _)] = messages(receiver[0])
    assert (message.type, message.id, message.from_) == (kind, answer["wamid"], CUSTOMER)
    assert all(receiver[0].signed)


@pytest.mark.parametrize("kind", MEDIA_KINDS)
async def test_media_from_a_customer_has_real_bytes_behind_its_id(
    sandbox: SandboxClient, receiver: tuple[Receiver, str], kind: str
) -> None:
    answer = await customer_sends(sandbox, kind, size=4096)
    await wait_until(lambda: len(messages(receiver[0])) == 1, timeout=5)
    [(_, raw)] = messages(receiver[0])
    media = raw[kind]
    assert media["id"] == answer["media_id"]
    lookup = await (await sandbox.get(f"{GRAPH}/{media['id']}", headers=AUTH)).json()
    content = await (await sandbox.get(URL(lookup["url"]).relative(), headers=AUTH)).read()
    assert len(content) == lookup["file_size"] == 4096
    digest = hashlib.sha256(content).digest()
    assert base64.b64decode(media["sha256"]) == digest  # base64 in the webhook
    assert lookup["sha256"] == digest.hex()  # hex in the look-up


async def test_inbound_media_id_stops_resolving_after_its_lifetime(
    sandbox: SandboxClient,
) -> None:
    answer = await customer_sends(sandbox, "image")
    await sandbox.post("/_sandbox/clock", json={"advance_s": 7 * 24 * 3600 + 1})
    response = await sandbox.get(f"{GRAPH}/{answer['media_id']}", headers=AUTH)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == 100


async def test_a_customer_message_opens_the_window_for_free_form_replies(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    await customer_sends(sandbox, "text", body="hi there")
    status, _ = await send(sandbox, text_to())
    assert status == 200
    await wait_until(lambda: len(receiver[0].statuses()) == 3, timeout=5)
    assert [s for _, s, _ in receiver[0].statuses()] == ["sent", "delivered", "read"]


async def test_unknown_kind_is_refused(sandbox: SandboxClient) -> None:
    response = await sandbox.post(
        f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": "hologram"}
    )
    assert response.status == 400


async def test_fields_that_do_not_fit_the_kind_are_refused(sandbox: SandboxClient) -> None:
    response = await sandbox.post(
        f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": "contacts", "contacts": 5}
    )
    assert response.status == 400


async def test_media_larger_than_the_largest_kind_is_refused(sandbox: SandboxClient) -> None:
    response = await sandbox.post(
        f"/_sandbox/customers/{CUSTOMER}/messages",
        json={"type": "document", "size": 101 * 1024 * 1024},
    )
    assert response.status == 400
