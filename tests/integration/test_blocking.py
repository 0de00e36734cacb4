"""Blocking customers: the sandbox as Meta's block-users API (docs/cloudapi/blocking.md),
driven through wapipe's client (shared/cloudapi/blocking.py) and ``wapipe block``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest

from tests.helpers import wait_until
from tests.integration.sandbox_support import (
    CUSTOMER,
    TOKEN,
    Receiver,
    SandboxClient,
    phone_number_id,
    send,
    text_to,
)
from wapipe.cli.block.run import run_block
from wapipe.sandbox.keys import WORLD
from wapipe.shared.cloudapi import blocking
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.settings import Settings

STRANGER = "447700900123"  # never wrote: cannot be blocked


def settings_for(sandbox: SandboxClient) -> Settings:
    return Settings(
        graph_url=str(sandbox.make_url("")).rstrip("/"),
        access_token=TOKEN,
        phone_number_id=phone_number_id(sandbox),
    )


@pytest.fixture
async def api(sandbox: SandboxClient) -> AsyncIterator[CloudApi]:
    async with CloudApi(GraphConfig.from_settings(settings_for(sandbox))) as client:
        yield client


def wrote_lately(sandbox: SandboxClient, *wa_ids: str) -> None:
    world = sandbox.app[WORLD]
    for wa_id in wa_ids:
        customer = world.customers.get(wa_id) or world.add_customer(wa_id, "Customer")
        customer.last_inbound_at = world.clock.now()


async def test_a_customer_who_wrote_is_blocked_listed_and_unblocked(
    sandbox: SandboxClient, api: CloudApi
) -> None:
    wrote_lately(sandbox, CUSTOMER)
    number = phone_number_id(sandbox)
    result = await blocking.block(api, number, [f"+{CUSTOMER}"])
    assert [(u.input, u.wa_id) for u in result.added_users] == [(f"+{CUSTOMER}", CUSTOMER)]
    assert result.failed_users == ()
    assert [u.wa_id for u in await blocking.blocked(api, number)] == [CUSTOMER]
    removed = await blocking.block(api, number, [CUSTOMER], unblock=True)
    assert [u.wa_id for u in removed.done] == [CUSTOMER]
    assert await blocking.blocked(api, number) == []


async def test_a_user_who_did_not_write_in_24_hours_fails_alone_with_131047(
    sandbox: SandboxClient, api: CloudApi
) -> None:
    wrote_lately(sandbox, CUSTOMER)
    result = await blocking.block(api, phone_number_id(sandbox), [CUSTOMER, STRANGER])
    assert [u.wa_id for u in result.added_users] == [CUSTOMER]
    [failed] = result.failed_users
    assert failed.input == STRANGER
    assert failed.errors[0].code == 131047


async def test_a_customer_is_blocked_by_bsuid_too(sandbox: SandboxClient, api: CloudApi) -> None:
    wrote_lately(sandbox, CUSTOMER)
    bsuid = sandbox.app[WORLD].customers[CUSTOMER].user_id
    result = await blocking.block(api, phone_number_id(sandbox), [bsuid])
    assert [u.user_id for u in result.added_users] == [bsuid]


async def test_more_than_1000_users_a_request_are_refused_before_sending(api: CloudApi) -> None:
    with pytest.raises(ValueError, match="1,000"):
        await blocking.block(api, "1", [str(n) for n in range(1001)])


async def test_the_sandbox_refuses_more_than_1000_users_with_130429(
    sandbox: SandboxClient,
) -> None:
    body = {"messaging_product": "whatsapp", "block_users": [{"user": "1"}] * 1001}
    response = await sandbox.post(
        f"/v24.0/{phone_number_id(sandbox)}/block_users",
        json=body,
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == 130429


async def test_the_blocklist_is_paged_by_cursor(sandbox: SandboxClient, api: CloudApi) -> None:
    customers = [f"1555000{n:04d}" for n in range(blocking.PAGE_SIZE + 20)]
    wrote_lately(sandbox, *customers)
    await blocking.block(api, phone_number_id(sandbox), customers)
    listed = await blocking.blocked(api, phone_number_id(sandbox))
    assert [u.wa_id for u in listed] == customers


async def test_a_blocked_customers_messages_never_reach_the_business(
    sandbox: SandboxClient, api: CloudApi, receiver: tuple[Receiver, str]
) -> None:
    wrote_lately(sandbox, CUSTOMER)
    await blocking.block(api, phone_number_id(sandbox), [CUSTOMER])
    response = await sandbox.post(
        f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": "text", "body": "let me in"}
    )
    assert (await response.json())["delivered"] is False
    await blocking.block(api, phone_number_id(sandbox), [CUSTOMER], unblock=True)
    await sandbox.post(f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": "text"})
    await wait_until(lambda: len(receiver[0].bodies) == 1, timeout=5)
    assert b"let me in" not in receiver[0].bodies[0]


async def test_a_send_to_a_blocked_customer_is_refused_with_130403(
    sandbox: SandboxClient, api: CloudApi
) -> None:
    wrote_lately(sandbox, CUSTOMER)
    await blocking.block(api, phone_number_id(sandbox), [CUSTOMER])
    status, answer = await send(sandbox, text_to(CUSTOMER))
    assert (status, answer["error"]["code"]) == (400, 130403)


async def test_wapipe_block_add_reports_who_failed_and_exits_1(
    sandbox: SandboxClient, capsys: pytest.CaptureFixture[str]
) -> None:
    wrote_lately(sandbox, CUSTOMER)
    args = _args("add", [CUSTOMER, STRANGER])
    code = await _run(sandbox, args)
    assert code == 1
    shown = json.loads(capsys.readouterr().out)
    assert [u["wa_id"] for u in shown["blocked"]] == [CUSTOMER]
    assert shown["failed"][0]["user"] == STRANGER
    assert "131047" in shown["failed"][0]["reason"]
    assert await _run(sandbox, _args("list", [])) == 0
    assert [u["wa_id"] for u in json.loads(capsys.readouterr().out)] == [CUSTOMER]


def _args(action: str, users: list[str]) -> object:
    import argparse

    return argparse.Namespace(action=action, users=users, phone_number_id=None, json=True)


async def _run(sandbox: SandboxClient, args: object) -> int:
    import asyncio

    # The command runs its own event loop (console.run): off this test's loop, in a thread.
    return await asyncio.to_thread(run_block, settings_for(sandbox), args)  # type: ignore[arg-type]
