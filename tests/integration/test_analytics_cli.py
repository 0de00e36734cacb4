"""``wapipe analytics`` against the sandbox: points pulled, stored, shown; an empty range."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from tests.helpers import wait_until
from tests.integration.account_support import environment, wapipe
from tests.integration.sandbox_support import SandboxClient, open_window, send, text_to
from tests.integration.test_sandbox_business import ORDER_UPDATE, create
from tests.integration.test_sandbox_business import template_send as order_update_send
from wapipe.sandbox.keys import WORLD
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database


def today(sandbox: SandboxClient) -> str:
    return datetime.fromtimestamp(sandbox.app[WORLD].clock.now(), UTC).date().isoformat()


async def stored_points(database_url: str) -> dict[str, int]:
    table = schema.analytics_points
    async with open_database(database_url) as engine, engine.connect() as connection:
        rows = await connection.execute(select(table.c.kind, func.count()).group_by(table.c.kind))
        return {kind: count for kind, count in rows}


def delivered(sandbox: SandboxClient, count: int) -> bool:
    sent = sandbox.app[WORLD].sent.values()
    return sum(any(s == "delivered" for s, _ in m.statuses) for m in sent) == count


async def test_messages_and_pricing_are_pulled_stored_and_shown(
    sandbox: SandboxClient, database_url: str
) -> None:
    open_window(sandbox)
    for _ in range(3):
        assert (await send(sandbox, text_to()))[0] == 200
    await wait_until(lambda: delivered(sandbox, 3), timeout=10)
    env = environment(sandbox, database_url)
    day = today(sandbox)
    ran = await wapipe(env, "analytics", "messages", "--since", day, "--until", day, "--json")
    assert ran.code == 0, ran.err
    [point] = ran.json()
    assert (point["metrics"]["sent"], point["metrics"]["delivered"]) == (3, 3)
    pricing = await wapipe(env, "analytics", "pricing", "--since", day, "--until", day)
    assert pricing.code == 0, pricing.err
    assert "SERVICE" in pricing.out
    assert await stored_points(database_url) == {"messages": 1, "pricing": 1}
    again = await wapipe(env, "analytics", "messages", "--since", day, "--until", day)
    assert again.code == 0
    assert await stored_points(database_url) == {"messages": 1, "pricing": 1}  # replaced


async def test_template_analytics_for_every_template_of_the_waba(
    sandbox: SandboxClient, database_url: str
) -> None:
    created = await create(sandbox, ORDER_UPDATE)
    world = sandbox.app[WORLD]
    await wait_until(lambda: world.template_records[created["id"]].status == "APPROVED")
    open_window(sandbox)
    assert (await send(sandbox, order_update_send()))[0] == 200
    await wait_until(lambda: delivered(sandbox, 1), timeout=10)
    day = today(sandbox)
    env = environment(sandbox, database_url)
    ran = await wapipe(env, "analytics", "templates", "--since", day, "--until", day, "--json")
    assert ran.code == 0, ran.err
    [point] = ran.json()
    assert point["dimensions"] == {"template_id": created["id"]}
    assert (point["metrics"]["sent"], point["metrics"]["delivered"]) == (1, 1)
    assert point["metrics"]["cost"] == 0.004


async def test_an_empty_date_range_is_refused_before_any_call(
    sandbox: SandboxClient, database_url: str
) -> None:
    env = environment(sandbox, database_url)
    ran = await wapipe(
        env, "analytics", "conversations", "--since", "2026-12-04", "--until", "2026-12-03"
    )
    assert ran.code == 2
    assert ran.err == "wapipe analytics: --since 2026-12-04 --until 2026-12-03: an empty period\n"
    assert list(sandbox.app[WORLD].requests) == []
