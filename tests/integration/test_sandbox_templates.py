"""The template list and node as Meta answers them: ``fields``, ``summary``, ``GET /{id}``."""

from __future__ import annotations

from typing import Any

from tests.helpers import wait_until
from tests.integration.sandbox_support import GRAPH, SandboxClient, phone_number_id
from tests.integration.test_sandbox_business import AUTH, ORDER_UPDATE, create, waba_id


async def get(sandbox: SandboxClient, path: str, **params: str) -> tuple[int, dict[str, Any]]:
    response = await sandbox.get(f"{GRAPH}/{path}", params=params, headers=AUTH)
    body: dict[str, Any] = await response.json()
    return response.status, body


async def test_list_carries_parameter_format_and_honours_fields(sandbox: SandboxClient) -> None:
    await create(sandbox, ORDER_UPDATE)
    await create(sandbox, {**ORDER_UPDATE, "name": "named", "parameter_format": "NAMED"})
    status, full = await get(sandbox, f"{waba_id(sandbox)}/message_templates")
    assert status == 200
    assert [t["parameter_format"] for t in full["data"]] == ["POSITIONAL", "NAMED"]
    assert "summary" not in full
    _, some = await get(sandbox, f"{waba_id(sandbox)}/message_templates", fields="name,status")
    assert [set(t) for t in some["data"]] == [{"name", "status", "id"}] * 2


async def test_list_summary_counts_every_template_not_only_the_page(
    sandbox: SandboxClient,
) -> None:
    for i in range(3):
        await create(sandbox, {**ORDER_UPDATE, "name": f"order_{i}"})
    _, page = await get(
        sandbox, f"{waba_id(sandbox)}/message_templates", limit="2", summary="total_count"
    )
    assert len(page["data"]) == 2
    assert page["summary"]["total_count"] == 3
    assert page["summary"]["message_template_limit"] == 250
    assert "next" in page["paging"]


async def test_template_node_is_read_by_its_id(sandbox: SandboxClient) -> None:
    created = await create(sandbox, {**ORDER_UPDATE, "name": "reject_me"})
    status, node = await get(sandbox, created["id"])
    assert status == 200
    assert (node["id"], node["name"], node["status"]) == (created["id"], "reject_me", "PENDING")

    async def rejected() -> bool:
        return (await get(sandbox, created["id"], fields="status,rejected_reason"))[1] == {
            "id": created["id"],
            "status": "REJECTED",
            "rejected_reason": "INVALID_FORMAT",
        }

    await wait_until(rejected, timeout=5)


async def test_phone_numbers_answer_the_fields_asked_for_and_meta_defaults_without(
    sandbox: SandboxClient,
) -> None:
    number = phone_number_id(sandbox)
    _, listed = await get(sandbox, f"{waba_id(sandbox)}/phone_numbers")
    assert set(listed["data"][0]) == {
        "verified_name",
        "display_phone_number",
        "id",
        "quality_rating",
    }
    _, asked = await get(sandbox, f"{waba_id(sandbox)}/phone_numbers", fields="name_status")
    assert asked["data"][0] == {"id": number, "name_status": "APPROVED"}
    _, node = await get(sandbox, number)
    assert node["throughput"] == {"level": "STANDARD"}
    assert "name_status" not in node
    _, tier = await get(sandbox, number, fields="messaging_limit_tier,throughput")
    assert set(tier) == {"id", "messaging_limit_tier", "throughput"}


async def test_a_profile_picture_handle_sets_the_picture_url(sandbox: SandboxClient) -> None:
    number = phone_number_id(sandbox)
    response = await sandbox.post(
        f"{GRAPH}/{number}/whatsapp_business_profile",
        json={"messaging_product": "whatsapp", "profile_picture_handle": "4::aW1hZ2U=:ARZ9"},
        headers=AUTH,
    )
    assert (await response.json()) == {"success": True}
    _, profile = await get(
        sandbox, f"{number}/whatsapp_business_profile", fields="profile_picture_url"
    )
    assert profile["data"][0]["profile_picture_url"].endswith("/ARZ9.jpg")
