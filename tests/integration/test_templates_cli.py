"""``wapipe templates`` against the sandbox: paging, create (checked first), reject, delete,
sync into storage with its status changes, and an expired token."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.integration.account_support import environment, wapipe
from tests.integration.sandbox_support import SandboxClient
from tests.integration.test_sandbox_business import ORDER_UPDATE, create
from wapipe.sandbox import business
from wapipe.sandbox.keys import WORLD
from wapipe.shared.storage.account import AccountEventRow, TemplateRow, store_account_events
from wapipe.shared.storage.database import open_database
from wapipe.shared.storage.templates import find_template

YAML_TEMPLATE = """\
name: order_update
language: en_US
category: UTILITY
components:
  - type: BODY
    text: "Hi {{1}}, order {{2}} is on its way."
    example:
      body_text: [["Ana", "A-1"]]
"""


def statuses(sandbox: SandboxClient) -> dict[str, str]:
    return {t.created["name"]: t.status for t in sandbox.app[WORLD].template_records.values()}


async def test_list_follows_the_pages_to_the_last_template(
    sandbox: SandboxClient, database_url: str
) -> None:
    for i in range(5):
        await create(sandbox, {**ORDER_UPDATE, "name": f"order_{i}"})
    env = environment(sandbox, database_url)
    ran = await wapipe(env, "templates", "list", "--page-size", "2", "--json")
    assert ran.code == 0, ran.err
    listed = ran.json()
    assert [t["name"] for t in listed["templates"]] == [f"order_{i}" for i in range(5)]
    assert listed["summary"]["total_count"] == 5
    assert {t["parameter_format"] for t in listed["templates"]} == {"POSITIONAL"}
    world = sandbox.app[WORLD]
    pages = [r for r in world.requests if r.method == "GET" and "message_templates" in r.path]
    assert len(pages) == 3  # 2 + 2 + 1
    table = await wapipe(env, "templates", "list")
    assert table.code == 0
    assert "5 templates of WABA" in table.out
    assert "order_4" in table.out


async def test_create_from_yaml_then_delete(
    sandbox: SandboxClient, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "order.yaml"
    path.write_text(YAML_TEMPLATE)
    env = environment(sandbox, database_url)
    ran = await wapipe(env, "templates", "create", str(path), "--json")
    assert ran.code == 0, ran.err
    assert ran.json()["status"] == "PENDING"
    assert "order_update" in statuses(sandbox)
    deleted = await wapipe(env, "templates", "delete", "order_update")
    assert deleted.code == 0, deleted.err
    assert statuses(sandbox) == {}


async def test_an_invalid_file_is_refused_naming_the_field_before_any_call(
    sandbox: SandboxClient, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        '{"name": "Order Update", "language": "en_US", "category": "UTILITY", "components": '
        '[{"type": "BODY", "text": "Hi {{1}} and {{2}}", "example": {"body_text": [["Ana"]]}}]}'
    )
    ran = await wapipe(environment(sandbox, database_url), "templates", "create", str(path))
    assert ran.code == 2
    assert "name: 1 to 512 lowercase letters" in ran.err
    assert "components[0].example.body_text: 1 example values for 2 placeholders" in ran.err
    assert len(ran.err.strip().splitlines()) == 1
    assert list(sandbox.app[WORLD].requests) == []


async def test_a_rejected_template_shows_rejected_with_its_reason(
    sandbox: SandboxClient, database_url: str
) -> None:
    created = await create(sandbox, {**ORDER_UPDATE, "name": "reject_offer"})
    await wait_until(lambda: statuses(sandbox)["reject_offer"] == "REJECTED", timeout=5)
    env = environment(sandbox, database_url)
    by_name = await wapipe(env, "templates", "show", "reject_offer", "--json")
    assert by_name.code == 0, by_name.err
    [shown] = by_name.json()
    assert (shown["template"]["status"], shown["template"]["rejected_reason"]) == (
        "REJECTED",
        "INVALID_FORMAT",
    )
    by_id = await wapipe(env, "templates", "show", created["id"])
    assert by_id.code == 0, by_id.err
    assert "REJECTED" in by_id.out


async def test_sync_stores_templates_and_each_status_change(
    sandbox: SandboxClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(business, "REVIEW_S", 3600.0)  # reviewed when the test says
    created = await create(sandbox, ORDER_UPDATE)
    env = environment(sandbox, database_url)
    first = await wapipe(env, "templates", "sync", "--json")
    assert first.code == 0, first.err
    assert first.json()["stored"] == 1
    assert [(c["before"], c["after"]) for c in first.json()["changes"]] == [(None, "PENDING")]
    review = await sandbox.post(
        f"/_sandbox/templates/{created['id']}/review", json={"status": "APPROVED"}
    )
    assert review.status == 200
    second = await wapipe(env, "templates", "sync", "--json")
    assert [(c["before"], c["after"]) for c in second.json()["changes"]] == [
        ("PENDING", "APPROVED")
    ]
    again = await wapipe(env, "templates", "sync", "--json")
    assert again.json()["changes"] == []
    shown = await wapipe(env, "templates", "show", created["id"], "--json")
    history: list[dict[str, Any]] = shown.json()[0]["history"]
    assert [(h["status"], h["source"]) for h in history] == [
        ("PENDING", "sync"),
        ("APPROVED", "sync"),
    ]


@pytest.mark.parametrize("command", [["templates", "list"], ["templates", "sync"]])
async def test_an_expired_token_is_one_clear_line_and_a_failure(
    sandbox: SandboxClient, database_url: str, command: list[str]
) -> None:
    env = environment(sandbox, database_url, WAPIPE_ACCESS_TOKEN="expired")
    ran = await wapipe(env, *command)
    assert ran.code == 1
    assert ran.err.startswith(f"wapipe {' '.join(command)}: the access token was refused: (190)")
    assert "Traceback" not in ran.err
    assert len(ran.err.strip().splitlines()) == 1


async def test_history_shows_webhook_changes_beside_pulled_ones(
    sandbox: SandboxClient, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A change the account worker stored from a template webhook reads in the same history,
    and moves the stored status the sender's check reads."""
    monkeypatch.setattr(business, "REVIEW_S", 3600.0)  # stays PENDING
    created = await create(sandbox, ORDER_UPDATE)
    env = environment(sandbox, database_url)
    assert (await wapipe(env, "templates", "sync")).code == 0
    later = time.time() + 60
    payload = {
        "event": "PAUSED",
        "message_template_id": int(created["id"]),
        "message_template_name": "order_update",
        "message_template_language": "en_US",
        "reason": None,
    }
    async with open_database(database_url) as engine, engine.begin() as connection:
        await store_account_events(
            connection,
            [
                AccountEventRow(
                    key=f"message_template_status_update:{created['id']}:paused",
                    field="message_template_status_update",
                    waba_id=env["WAPIPE_WABA_ID"],
                    phone_number_id=None,
                    entry_time=int(later),
                    received_at=later,
                    stored_at=later,
                    payload=json.dumps(payload),
                )
            ],
            [
                TemplateRow(
                    template_id=created["id"], waba_id=env["WAPIPE_WABA_ID"],
                    name="order_update", language="en_US", status="PAUSED",
                    status_reason=None, status_at=later, category=None, category_at=None,
                    quality=None, quality_at=None,
                )
            ],
            [],
        )  # fmt: skip
    shown = await wapipe(env, "templates", "show", created["id"], "--json")
    history = shown.json()[0]["history"]
    assert [(h["status"], h["source"]) for h in history] == [
        ("PENDING", "sync"),
        ("PAUSED", "webhook"),
    ]
    async with open_database(database_url) as engine:
        stored = await find_template(engine, "order_update", "en_US")
    assert stored is not None
    assert stored.status == "PAUSED"
    assert stored.components == ORDER_UPDATE["components"]


async def test_edit_sends_new_components_and_the_template_goes_back_to_review(
    sandbox: SandboxClient, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(business, "REVIEW_S", 3600.0)  # reviewed when the test says
    created = await create(sandbox, ORDER_UPDATE)
    business.review(sandbox.app, created["id"], "APPROVED", "NONE")
    edit = tmp_path / "edit.yaml"
    edit.write_text(
        'components:\n  - {type: BODY, text: "Hello {{1}}", example: {body_text: [[Ana]]}}\n'
    )
    env = environment(sandbox, database_url)
    ran = await wapipe(env, "templates", "edit", created["id"], str(edit), "--json")
    assert ran.code == 0, ran.err
    template = sandbox.app[WORLD].template_records[created["id"]]
    assert template.status == "PENDING"
    assert template.created["components"][0]["text"] == "Hello {{1}}"
    again = await wapipe(env, "templates", "edit", created["id"], str(edit))
    assert again.code != 0  # approved templates: one edit a day, and this one is in review
    assert len(again.err.strip().splitlines()) == 1


async def test_an_edit_of_the_name_is_refused_before_any_call(
    sandbox: SandboxClient, database_url: str, tmp_path: Path
) -> None:
    edit = tmp_path / "edit.json"
    edit.write_text('{"name": "renamed", "category": "MARKETING"}')
    ran = await wapipe(environment(sandbox, database_url), "templates", "edit", "1", str(edit))
    assert ran.code == 2
    assert "an edit gives only components, category, parameter_format (name cannot change)" in (
        ran.err
    )
    assert list(sandbox.app[WORLD].requests) == []
