"""Analytics computed from what the sandbox sent, in Meta's shapes."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.helpers import wait_until
from tests.integration.sandbox_support import (
    GRAPH,
    TOKEN,
    Receiver,
    SandboxClient,
    open_window,
    send,
    text_to,
)
from tests.integration.test_sandbox_business import (
    ORDER_UPDATE,
    create,
    template_events,
    template_send,
    waba_id,
)
from wapipe.sandbox.analytics import buckets, split_fields
from wapipe.sandbox.keys import WORLD

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def waba_fields(client: SandboxClient, fields: str) -> dict[str, Any]:
    response = await client.get(
        f"{GRAPH}/{waba_id(client)}", params={"fields": fields}, headers=AUTH
    )
    body: dict[str, Any] = await response.json()
    return body


async def test_analytics_count_what_was_sent_and_delivered_and_what_it_cost(
    sandbox: SandboxClient, receiver: tuple[Receiver, str]
) -> None:
    open_window(sandbox)
    created = await create(sandbox, ORDER_UPDATE)
    await wait_until(lambda: len(template_events(receiver[0])) == 1, timeout=5)
    for _ in range(3):
        assert (await send(sandbox, text_to()))[0] == 200
    assert (await send(sandbox, template_send()))[0] == 200
    await wait_until(lambda: len(receiver[0].statuses()) == 12, timeout=5)

    now = int(time.time())
    start = now - now % 86400
    end = start + 2 * 86400  # today and tomorrow: a status just past midnight still counts
    conversations = await waba_fields(
        sandbox,
        f"conversation_analytics.start({start}).end({end}).granularity(DAILY)",
    )
    opened: dict[str, int] = {}
    for point in conversations["conversation_analytics"]["data"][0]["data_points"]:
        opened[point["conversation_category"]] = (
            opened.get(point["conversation_category"], 0) + point["conversation"]
        )
    # Per-message pricing: conversations are only free entry point windows, none here.
    assert opened == {}

    node = await waba_fields(
        sandbox,
        f"analytics.start({start}).end({end}).granularity(DAY),"
        f"pricing_analytics.start({start}).end({end}).granularity(DAILY)",
    )
    assert node["id"] == waba_id(sandbox)
    days = node["analytics"]["data_points"]
    assert [(d["start"], d["end"]) for d in days] == [(start, start + 86400), (start + 86400, end)]
    assert (sum(d["sent"] for d in days), sum(d["delivered"] for d in days)) == (4, 4)
    volume: dict[str, int] = {}
    cost: dict[str, float] = {}
    for point in node["pricing_analytics"]["data"][0]["data_points"]:
        category = point["pricing_category"]
        # The customer wrote: replies and the utility template inside the window are free.
        assert point["pricing_type"] == "FREE_CUSTOMER_SERVICE"
        volume[category] = volume.get(category, 0) + point["volume"]
        cost[category] = cost.get(category, 0) + point["cost"]
    assert volume == {"SERVICE": 3, "UTILITY": 1}
    assert cost == {"SERVICE": 0.0, "UTILITY": 0.0}

    report = await (
        await sandbox.get(
            f"{GRAPH}/{waba_id(sandbox)}/template_analytics",
            headers=AUTH,
            params={
                "start": str(start),
                "end": str(end),
                "granularity": "DAILY",
                "template_ids": f'["{created["id"]}"]',
            },
        )
    ).json()
    points = report["data"][0]["data_points"]
    assert {p["template_id"] for p in points} == {created["id"]}
    assert [sum(p[k] for p in points) for k in ("sent", "delivered", "read")] == [1, 1, 1]
    spent = sum(c["value"] for p in points for c in p["cost"] if c["type"] == "amount_spent")
    assert spent == 0.004


async def test_bad_analytics_query_answers_100(sandbox: SandboxClient) -> None:
    body = await waba_fields(sandbox, "analytics.start(10).granularity(DAY)")
    assert body["error"]["code"] == 100


def test_fields_split_at_top_level_commas_only() -> None:
    assert split_fields('analytics.phone_numbers(["1","2"]).start(1),name') == [
        'analytics.phone_numbers(["1","2"]).start(1)',
        "name",
    ]


@pytest.mark.parametrize(("granularity", "count"), [("HALF_HOUR", 48), ("DAY", 1), ("MONTHLY", 1)])
def test_periods_are_aligned(granularity: str, count: int) -> None:
    periods = buckets(
        1_795_000_000 - 1_795_000_000 % 86400,
        1_795_000_000 - 1_795_000_000 % 86400 + 86400,
        granularity,
    )
    assert len(periods) == count
    assert all(b > a for a, b in periods)


async def test_world_keeps_when_each_status_was_reported(sandbox: SandboxClient) -> None:
    open_window(sandbox)
    await send(sandbox, text_to())
    [message] = sandbox.app[WORLD].sent.values()
    assert [status for status, _ in message.statuses] == ["sent", "delivered", "read"]
