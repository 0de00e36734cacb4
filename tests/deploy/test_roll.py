"""Rolling the compose stack's ingress under load (deploy/scripts/roll.sh): a new container joins
the network namespace `ingress-net` holds, shares port 8080 with the old one (SO_REUSEPORT), and
the old one hands over at SIGTERM. 20 clients post signed webhooks all along: none is refused or
cut, and every one answered 200 is stored by the status worker."""

from __future__ import annotations

import asyncio
import contextlib
import os

import pytest

from tests.deploy.stack import COMPOSE_FILE, DEPLOY, ROOT, Stack
from tests.helpers import wait_until
from tests.integration.test_rolling_restart import load


@pytest.mark.timeout(300)
async def test_rolling_the_ingress_under_load_refuses_and_cuts_nothing(stack: Stack) -> None:
    secret = (DEPLOY / "secrets" / "app_secrets").read_text().strip().split(",")[0]
    url = stack.url("ingress-net", 8080) + "/webhook"
    old = set(stack("ps", "--quiet", "ingress").split())
    tag = f"ROLL{os.getpid()}N"  # this run's webhooks, apart from any other test's
    answers: list[int | str] = []
    stop = asyncio.Event()
    traffic = asyncio.create_task(load(url, stop, answers, secret, tag))
    try:
        await wait_until(lambda: len(answers) > 200, timeout=30)
        roll = await asyncio.create_subprocess_exec(
            str(DEPLOY / "scripts" / "roll.sh"),
            *("-f", str(COMPOSE_FILE), "-p", stack.project),
            cwd=ROOT,
            env=stack.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, said = await asyncio.wait_for(roll.communicate(), timeout=150)
        assert roll.returncode == 0, said.decode()[-2000:]
        rolled_at = len(answers)
        await wait_until(lambda: len(answers) > rolled_at + 200, timeout=30)
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await traffic
    new = set(stack("ps", "--quiet", "ingress").split())
    assert len(new) == 1, new
    assert not new & old, (old, new)  # the old one is gone
    refused_or_cut = [answer for answer in answers if answer != 200]
    assert refused_or_cut == [], f"{len(refused_or_cut)} of {len(answers)}: {refused_or_cut[:5]}"
    print(f"{len(answers)} webhooks, {rolled_at} before the roll ended, all answered 200")

    def stored() -> int:
        query = f"select count(*) from statuses where wamid like 'wamid.{tag}%'"
        return int(stack.sql(query)[0][0])

    await wait_until(lambda: stored() == len(answers), timeout=60, step=1.0)
