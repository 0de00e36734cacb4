"""Templates with their review webhooks, template sends, and the business profile."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import wait_until
from tests.integration.sandbox_support import (
    CUSTOMER,
    GRAPH,
    TOKEN,
    Receiver,
    SandboxClient,
    phone_number_id,
    response_sample,
    same_keys,
    send,
)
from wapipe.sandbox.keys import WORLD
from wapipe.shared.schemas.webhook import decode_envelope, decode_value
from wapipe.shared.schemas.webhook_fields import TemplateStatusUpdate

AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORDER_UPDATE = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {
            "type": "BODY",
            "text": "Hi {{1}}, order {{2}} is on its way.",
            "example": {"body_text": [["Ana", "A-1"]]},
        }
    ],
}


def waba_id(client: SandboxClient) -> str:
    return next(iter(client.app[WORLD].businesses.values())).waba_id


async def create(client: SandboxClient, template: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        f"{GRAPH}/{waba_id(client)}/message_templates", json=template, headers=AUTH
    )
    body: dict[str, Any] = await response.json()
    return body


def template_events(receiver: Receiver) -> list[TemplateStatusUpdate]:
    events = []
    for body in receiver.bodies:
        for entry in decode_envelope(body).entry:
            assert entry.time is not None  # template fields carry entry time
            for change in entry.changes:
                value = decode_value(change.field, change.value)
                if isinstance(value, TemplateStatusUpdate):
                    events.append(value)
    return events


def template_send(name: str = "order_update", params: int = 2) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "to": CUSTOMER,
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": f"p{i}"} for i in range(params)],
                }
            ],
        },
    }


async def test_created_template_is_pending_then_approved_with_a_webhook(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    created = await create(sandbox, ORDER_UPDATE)
    assert created["status"] == "PENDING"
    assert created["category"] == "UTILITY"
    await wait_until(lambda: len(template_events(receiver[0])) == 1, timeout=5)
    [event] = template_events(receiver[0])
    assert (event.event, str(event.message_template_id), event.message_template_name) == (
        "APPROVED",
        created["id"],
        "order_update",
    )
    listed = await (
        await sandbox.get(
            f"{GRAPH}/{waba_id(sandbox)}/message_templates",
            params={"name": "order_update"},
            headers=AUTH,
        )
    ).json()
    assert [t["status"] for t in listed["data"]] == ["APPROVED"]
    assert set(listed["paging"]["cursors"]) == {"before", "after"}


async def test_review_through_the_api_rejects_and_the_send_then_fails_132001(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    created = await create(sandbox, ORDER_UPDATE)
    response = await sandbox.post(
        f"/_sandbox/templates/{created['id']}/review",
        json={"status": "REJECTED", "reason": "INCORRECT_CATEGORY"},
    )
    assert response.status == 200
    await wait_until(lambda: len(template_events(receiver[0])) == 1, timeout=5)
    assert template_events(receiver[0])[0].reason == "INCORRECT_CATEGORY"
    status, body = await send(sandbox, template_send())
    assert (status, body["error"]["code"]) == (400, 132001)
    assert same_keys(body, response_sample("err_132001_template_missing.json"))


async def test_template_send_is_accepted_with_message_status_and_counts_parameters(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    await create(sandbox, ORDER_UPDATE)
    await wait_until(lambda: len(template_events(receiver[0])) == 1, timeout=5)
    status, body = await send(sandbox, template_send())
    assert status == 200
    assert same_keys(body, response_sample("send_ok_template_accepted.json"))
    assert body["messages"][0]["message_status"] == "accepted"
    status, body = await send(sandbox, template_send(params=1))
    assert (status, body["error"]["code"]) == (400, 132000)


async def test_marketing_template_to_a_customer_who_stopped_marketing_fails_131050(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    await create(sandbox, {**ORDER_UPDATE, "name": "spring_promo", "category": "MARKETING"})
    await wait_until(lambda: len(template_events(receiver[0])) == 1, timeout=5)
    await sandbox.post(
        "/_sandbox/customers", json={"wa_id": CUSTOMER, "name": "Kerry", "stopped_marketing": True}
    )
    status, _ = await send(sandbox, template_send("spring_promo"))
    assert status == 200
    statuses = receiver[0].statuses

    await wait_until(lambda: len(statuses()) == 1, timeout=5)
    assert statuses()[0][1] == "failed"
    assert statuses()[0][2]["errors"][0]["code"] == 131050


async def test_a_review_due_before_a_reset_does_not_decide_a_new_template(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    await create(sandbox, {**ORDER_UPDATE, "name": "reject_me"})
    await sandbox.post("/_sandbox/reset")
    created = await create(sandbox, ORDER_UPDATE)  # may get the same id as reject_me had
    await wait_until(lambda: len(template_events(receiver[0])) == 1, timeout=5)
    [event] = template_events(receiver[0])
    assert (str(event.message_template_id), event.event) == (created["id"], "APPROVED")


async def test_template_named_reject_is_rejected_and_delete_removes_it(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    created = await create(sandbox, {**ORDER_UPDATE, "name": "reject_me"})
    await wait_until(lambda: len(template_events(receiver[0])) == 1, timeout=5)
    assert template_events(receiver[0])[0].event == "REJECTED"
    deleted = await sandbox.delete(
        f"{GRAPH}/{waba_id(sandbox)}/message_templates",
        params={"name": "reject_me", "hsm_id": created["id"]},
        headers=AUTH,
    )
    assert await deleted.json() == {"success": True}
    listed = await (
        await sandbox.get(f"{GRAPH}/{waba_id(sandbox)}/message_templates", headers=AUTH)
    ).json()
    assert listed["data"] == []


@pytest.mark.parametrize(
    ("template", "code"),
    [
        ({**ORDER_UPDATE, "name": "Bad Name"}, 100),
        ({**ORDER_UPDATE, "category": "PROMO"}, 100),
        ({"language": "en_US", "category": "UTILITY"}, 131008),
    ],
)
async def test_bad_template_is_refused(
    sandbox: SandboxClient, template: dict[str, Any], code: int
) -> None:
    assert (await create(sandbox, template))["error"]["code"] == code


async def test_business_profile_reads_and_updates(sandbox: SandboxClient) -> None:
    path = f"{GRAPH}/{phone_number_id(sandbox)}/whatsapp_business_profile"
    update = {
        "messaging_product": "whatsapp",
        "about": "We sell tea",
        "websites": ["https://tea.example"],
        "vertical": "RETAIL",
    }
    assert await (await sandbox.post(path, json=update, headers=AUTH)).json() == {"success": True}
    read = await (
        await sandbox.get(path, params={"fields": "about,websites,vertical"}, headers=AUTH)
    ).json()
    assert read == {
        "data": [
            {
                "about": "We sell tea",
                "websites": ["https://tea.example"],
                "vertical": "RETAIL",
                "messaging_product": "whatsapp",
            }
        ]
    }
    refused = await sandbox.post(path, json={**update, "about": "x" * 140}, headers=AUTH)
    assert (await refused.json())["error"]["code"] == 100


async def test_phone_number_info(sandbox: SandboxClient) -> None:
    info = await (await sandbox.get(f"{GRAPH}/{phone_number_id(sandbox)}", headers=AUTH)).json()
    assert info["quality_rating"] == "GREEN"
    assert info["throughput"] == {"level": "STANDARD"}
    assert info["id"] == phone_number_id(sandbox)
