"""Templates as Meta checks them (sandbox/template_rules.py): examples at creation, and what an
edit may change, and when."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import wait_until
from tests.integration.sandbox_support import GRAPH, Receiver, SandboxClient
from tests.integration.test_sandbox_business import AUTH, ORDER_UPDATE, create, waba_id
from wapipe.sandbox.business import review
from wapipe.sandbox.keys import WORLD

DAY_S = 24 * 3600


async def post(client: SandboxClient, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = await client.post(f"{GRAPH}/{path}", json=body, headers=AUTH)
    return response.status, await response.json()


async def approved(client: SandboxClient) -> str:
    template_id: str = (await create(client, ORDER_UPDATE))["id"]
    review(client.app, template_id, "APPROVED", "NONE")
    return template_id


def body(text: str, example: list[str] | None = None) -> list[dict[str, Any]]:
    component: dict[str, Any] = {"type": "BODY", "text": text}
    if example is not None:
        component["example"] = {"body_text": [example]}
    return [component]


@pytest.mark.parametrize(
    "components",
    [
        body("Hi {{1}}"),
        [{"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"}, *body("Hello")],
        [{"type": "HEADER", "format": "IMAGE"}, *body("Hello")],
        [
            *body("Hello"),
            {
                "type": "BUTTONS",
                "buttons": [{"type": "URL", "text": "Go", "url": "https://x.example/{{1}}"}],
            },
        ],
    ],
)
async def test_a_placeholder_without_its_example_is_refused_as_meta_refuses_it(
    sandbox: SandboxClient, components: list[dict[str, Any]]
) -> None:
    status, answer = await post(
        sandbox,
        f"{waba_id(sandbox)}/message_templates",
        {**ORDER_UPDATE, "components": components},
    )
    assert status == 400
    assert (answer["error"]["code"], answer["error"]["error_subcode"]) == (100, 2388043)
    assert "is missing expected field(s) (example)" in answer["error"]["error_data"]["details"]
    assert sandbox.app[WORLD].template_records == {}


async def test_an_edit_goes_back_to_review_and_announces_the_new_components(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    template_id = await approved(sandbox)
    status, answer = await post(sandbox, template_id, {"components": body("Yo {{1}}", ["Ana"])})
    assert (status, answer["success"], answer["id"]) == (200, True, template_id)
    template = sandbox.app[WORLD].template_records[template_id]
    assert template.status == "PENDING"
    await wait_until(lambda: template.status == "APPROVED", timeout=5)
    assert any(b"message_template_components_update" in b for b in receiver[0].bodies)
    node = await (await sandbox.get(f"{GRAPH}/{template_id}", headers=AUTH)).json()
    assert node["components"][0]["text"] == "Yo {{1}}"


@pytest.mark.parametrize(
    ("change", "details"),
    [
        ({"name": "other_name"}, "name cannot be edited"),
        ({"category": "MARKETING"}, "category of an approved template cannot be edited"),
        ({}, "give components or category"),
    ],
)
async def test_what_an_edit_may_not_change_is_refused(
    sandbox: SandboxClient, change: dict[str, Any], details: str
) -> None:
    template_id = await approved(sandbox)
    status, answer = await post(sandbox, template_id, change)
    assert status == 400
    assert details in answer["error"]["error_data"]["details"]


async def test_an_approved_template_is_edited_once_a_day_and_ten_times_in_thirty_days(
    sandbox: SandboxClient,
) -> None:
    template_id = await approved(sandbox)
    world = sandbox.app[WORLD]
    template = world.template_records[template_id]
    edit = {"components": body("Hi {{1}}", ["Ana"])}
    assert (await post(sandbox, template_id, edit))[0] == 200
    review(sandbox.app, template_id, "APPROVED", "NONE")
    status, answer = await post(sandbox, template_id, edit)
    assert status == 400
    assert "1 time(s) in 1 day(s)" in answer["error"]["error_data"]["details"]
    for _ in range(9):
        world.clock.advance(DAY_S)
        assert (await post(sandbox, template_id, edit))[0] == 200
        review(sandbox.app, template_id, "APPROVED", "NONE")
    world.clock.advance(DAY_S)
    status, answer = await post(sandbox, template_id, edit)
    assert "10 time(s) in 30 day(s)" in answer["error"]["error_data"]["details"]
    assert len(template.edits_at) == 10


async def test_a_rejected_template_may_be_edited_again_and_again_even_its_category(
    sandbox: SandboxClient,
) -> None:
    template_id = (await create(sandbox, ORDER_UPDATE))["id"]
    review(sandbox.app, template_id, "REJECTED", "INCORRECT_CATEGORY")
    for _ in range(3):
        assert (await post(sandbox, template_id, {"category": "MARKETING"}))[0] == 200
        review(sandbox.app, template_id, "REJECTED", "INCORRECT_CATEGORY")
    pending = (await create(sandbox, {**ORDER_UPDATE, "name": "still_pending"}))["id"]
    status, answer = await post(sandbox, pending, {"category": "MARKETING"})
    assert status == 400
    assert "status PENDING cannot be edited" in answer["error"]["error_data"]["details"]
