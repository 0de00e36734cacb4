"""Faults on demand: Cloud API errors, bare 5xx, hangs and dropped connections, replayable."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.integration.sandbox_support import (
    Receiver,
    SandboxClient,
    open_window,
    send,
    start_sandbox,
    text_to,
)


async def add_fault(client: SandboxClient, **fault: Any) -> int:
    return (await client.post("/_sandbox/faults", json=fault)).status


async def test_next_two_sends_answer_the_injected_code_then_sends_go_through(
    sandbox: SandboxClient,
) -> None:
    open_window(sandbox)
    assert await add_fault(sandbox, endpoint="messages", code=131000, count=2) == 200
    answers = [await send(sandbox, text_to()) for _ in range(3)]
    assert [status for status, _ in answers] == [400, 400, 200]
    assert answers[0][1]["error"]["code"] == 131000
    assert await (await sandbox.get("/_sandbox/faults")).json() == []


async def test_bare_http_status_without_a_meta_body(sandbox: SandboxClient) -> None:
    await add_fault(sandbox, endpoint="*", status=503)
    response = await sandbox.post(
        "/v24.0/1/messages", json={}, headers={"Authorization": "Bearer sandbox-test-token"}
    )
    assert response.status == 503
    assert await response.text() == "injected fault"


async def test_a_dropped_connection_and_a_hang_reach_the_client(sandbox: SandboxClient) -> None:
    await add_fault(sandbox, endpoint="messages", drop=True, count=1)
    with pytest.raises(aiohttp.ClientConnectionError):
        await send(sandbox, text_to())
    await add_fault(sandbox, endpoint="messages", hang=True, count=1)
    with pytest.raises(TimeoutError):
        await sandbox.post(
            "/v24.0/x/messages",
            json=text_to(),
            headers={"Authorization": "Bearer sandbox-test-token"},
            timeout=aiohttp.ClientTimeout(total=0.3),
        )


async def test_a_share_of_requests_fails_the_same_way_for_the_same_seed(
    receiver: tuple[Receiver, str],
) -> None:
    patterns = []
    for _ in range(2):
        client = await start_sandbox(receiver[1])
        try:
            open_window(client)
            await add_fault(client, endpoint="messages", rate=0.5, code=131016)
            patterns.append([(await send(client, text_to()))[0] for _ in range(20)])
        finally:
            await client.close()
    assert patterns[0] == patterns[1]
    assert 200 in patterns[0]
    assert 503 in patterns[0]  # 131016 answers 503


@pytest.mark.parametrize(
    "fault",
    [
        {"endpoint": "everything"},
        {"rate": 2},
        {"status": 200},
        {"colour": "red"},
        {"count": 0},
    ],
)
async def test_a_bad_fault_is_refused(sandbox: SandboxClient, fault: dict[str, Any]) -> None:
    assert await add_fault(sandbox, **fault) == 400
