"""``wapipe profile`` and ``wapipe numbers`` against the sandbox (and a sender's metrics)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.integration.account_support import environment, wapipe
from tests.integration.sandbox_support import SandboxClient, phone_number_id
from wapipe.sandbox.keys import WORLD
from wapipe.workers.sender.metrics import SenderMetrics


@pytest.fixture
async def sender_metrics(sandbox: SandboxClient) -> AsyncIterator[str]:
    """The sender's own metrics, served, with the sandbox's number paused and slowed down (a
    130429: half its pace)."""
    sender = SenderMetrics()
    sender.paused.labels(phone_number_id(sandbox)).set(1)
    sender.pace.labels(phone_number_id(sandbox)).set(40)

    async def metrics(request: web.Request) -> web.Response:
        return web.Response(body=sender.render(), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    server = TestServer(app)
    await server.start_server()
    yield str(server.make_url("/metrics"))
    await server.close()


async def test_profile_update_then_show(sandbox: SandboxClient, database_url: str) -> None:
    env = environment(sandbox, database_url)
    number = phone_number_id(sandbox)
    ran = await wapipe(
        env, "profile", "update", "--from", number, "--about", "Open 9-5",
        "--website", "https://shop.example.com", "--vertical", "RETAIL", "--json",
    )  # fmt: skip
    assert ran.code == 0, ran.err
    assert ran.json()["about"] == "Open 9-5"
    profile = sandbox.app[WORLD].businesses[number].profile
    assert (profile["about"], profile["vertical"]) == ("Open 9-5", "RETAIL")
    shown = await wapipe(env, "profile", "show", "--from", number)
    assert shown.code == 0, shown.err
    assert "Open 9-5" in shown.out
    assert "https://shop.example.com" in shown.out


async def test_an_over_long_profile_field_is_refused_before_any_call(
    sandbox: SandboxClient, database_url: str
) -> None:
    env = environment(sandbox, database_url)
    number = phone_number_id(sandbox)
    ran = await wapipe(
        env, "profile", "update", "--from", number, "--about", "x" * 140, "--email", "nobody"
    )
    assert ran.code == 2
    assert ran.err == (
        "wapipe profile update: about: at most 139 characters (it has 140); "
        "email: 'nobody' is not an email address\n"
    )
    assert list(sandbox.app[WORLD].requests) == []


async def test_numbers_show_quality_tier_and_the_senders_pace_and_pause(
    sandbox: SandboxClient, database_url: str, sender_metrics: str
) -> None:
    env = environment(sandbox, database_url, WAPIPE_SENDER_NUMBER_RATES="")
    number = phone_number_id(sandbox)
    business = sandbox.app[WORLD].businesses[number]
    ran = await wapipe(env, "numbers", "list", "--sender-metrics", sender_metrics, "--json")
    assert ran.code == 0, ran.err
    [row] = ran.json()
    assert row["id"] == number
    assert row["number"] == business.display_phone_number
    assert row["quality"] == business.quality_rating
    assert row["limit tier"] == business.messaging_limit_tier
    assert row["throughput"] == business.throughput_level
    assert (row["sender pace /s"], row["sender"]) == (40.0, "paused")
    shown = await wapipe(
        env, "numbers", "show", "--from", number, "--sender-metrics", "http://127.0.0.1:9"
    )
    assert shown.code == 0, shown.err
    assert "not reachable" in shown.out
    assert business.verified_name in shown.out


async def test_an_unknown_number_is_one_line(sandbox: SandboxClient, database_url: str) -> None:
    ran = await wapipe(environment(sandbox, database_url), "numbers", "show", "--from", "404404")
    assert ran.code == 1
    assert ran.err.startswith("wapipe numbers show: the Cloud API refused: (100)")
    assert len(ran.err.splitlines()) == 1
