"""pywa drives the sandbox's block-users API (block, unblock, list; by phone number and by
BSUID): every answer parses in pywa without error or warning. heyoo has no block-users calls.

Covered: ``WhatsApp.block_users``, ``unblock_users``, ``get_blocked_users`` (pywa 4.5).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator

import pytest
from pywa.client import WhatsApp
from pywa.types.others import BlockedUser, UsersBlockedResult, UsersUnblockedResult

from tests.conformance.clients import pywa_client, running_sandbox
from tests.integration.sandbox_support import CUSTOMER, SandboxClient, send, text_to
from wapipe.sandbox.keys import WORLD

STRANGER = "447700900123"


def wrote_lately(sandbox: SandboxClient, *wa_ids: str) -> None:
    world = sandbox.app[WORLD]
    for wa_id in wa_ids:
        customer = world.customers.get(wa_id) or world.add_customer(wa_id, "Customer")
        customer.last_inbound_at = world.clock.now()


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxClient]:
    async with running_sandbox() as running:
        yield running.sandbox


@pytest.fixture
def wa(sandbox: SandboxClient) -> Iterator[WhatsApp]:
    with pywa_client(sandbox) as client:
        yield client


@pytest.fixture(autouse=True)
def no_pywa_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="pywa")


def assert_pywa_quiet(caplog: pytest.LogCaptureFixture) -> None:
    assert [r.getMessage() for r in caplog.records if r.name.startswith("pywa")] == []


async def test_pywa_blocks_lists_and_unblocks_by_phone_number(
    sandbox: SandboxClient, wa: WhatsApp, caplog: pytest.LogCaptureFixture
) -> None:
    wrote_lately(sandbox, CUSTOMER)
    blocked = await asyncio.to_thread(wa.block_users, [CUSTOMER])
    assert isinstance(blocked, UsersBlockedResult)
    assert [u.wa_id for u in blocked.added_users] == [CUSTOMER]
    assert (blocked.failed_users, blocked.errors) == ((), None)

    listed = await asyncio.to_thread(lambda: list(wa.get_blocked_users()))
    assert all(isinstance(u, BlockedUser) for u in listed)
    assert [u.wa_id for u in listed] == [CUSTOMER]

    unblocked = await asyncio.to_thread(wa.unblock_users, [CUSTOMER])
    assert isinstance(unblocked, UsersUnblockedResult)
    assert [u.wa_id for u in unblocked.removed_users] == [CUSTOMER]
    assert await asyncio.to_thread(lambda: list(wa.get_blocked_users())) == []
    assert_pywa_quiet(caplog)


async def test_pywa_blocks_a_username_customer_by_bsuid(
    sandbox: SandboxClient, wa: WhatsApp, caplog: pytest.LogCaptureFixture
) -> None:
    wrote_lately(sandbox, CUSTOMER)
    bsuid = sandbox.app[WORLD].customers[CUSTOMER].user_id
    # pywa sends a BSUID as {"user_id": ...}, a number as {"user": ...}: the sandbox takes both.
    blocked = await asyncio.to_thread(wa.block_users, [bsuid])
    assert [u.bsuid for u in blocked.added_users] == [bsuid]
    unblocked = await asyncio.to_thread(wa.unblock_users, [bsuid])
    assert [u.bsuid for u in unblocked.removed_users] == [bsuid]
    assert_pywa_quiet(caplog)


async def test_pywa_reads_the_users_that_failed_with_metas_code(
    sandbox: SandboxClient, wa: WhatsApp, caplog: pytest.LogCaptureFixture
) -> None:
    # Meta answers HTTP 400 (error 139100) with the per-user lists when any user fails.
    # pywa 4.5 raises its error for that answer rather than return the lists, so a mixed
    # result reaches a pywa user as an exception: wapipe's own client returns the lists
    # (shared/cloudapi/blocking.py); here we check pywa can read that error.
    from pywa.errors import BulkBlockingFailed

    wrote_lately(sandbox, CUSTOMER)
    with pytest.raises(BulkBlockingFailed) as raised:
        await asyncio.to_thread(wa.block_users, [CUSTOMER, STRANGER])
    assert raised.value.code == 139100
    assert_pywa_quiet(caplog)


async def test_a_send_pywa_makes_to_a_blocked_customer_raises_metas_130403(
    sandbox: SandboxClient,
    wa: WhatsApp,
) -> None:
    from pywa.errors import WhatsAppError

    wrote_lately(sandbox, CUSTOMER)
    await asyncio.to_thread(wa.block_users, [CUSTOMER])
    with pytest.raises(WhatsAppError) as raised:
        await asyncio.to_thread(wa.send_message, CUSTOMER, "hello")
    assert raised.value.code == 130403
    status, _ = await send(sandbox, text_to(CUSTOMER))  # the same refusal for any client
    assert status == 400
