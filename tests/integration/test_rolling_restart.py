"""Rolling the ingress on one host: a second `wapipe ingress` starts on the same port beside the
first (SO_REUSEPORT), the first gets SIGTERM, and webhooks sent all along are every one answered
200 and published (ingress/handover.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp

from tests.conftest import SECRETS, VERIFY_TOKEN
from tests.helpers import drain, free_port, status_webhook, wait_until
from wapipe.shared.signature import HEADER, sign

CLIENTS = 20  # requests in flight at any moment


@asynccontextmanager
async def ingress(env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "wapipe", "ingress", env={**os.environ, **env}, stderr=output
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def listening(log: Path) -> bool:
    return log.exists() and "ingress listening" in log.read_text()


async def load(
    url: str,
    stop: asyncio.Event,
    answers: list[int | str],
    secret: str = SECRETS[0],
    tag: str = "R",
) -> None:
    """``CLIENTS`` senders of signed status webhooks (each of its own ``wamid.<tag><n>``) back to
    back on keep-alive connections, as Meta's would be."""
    sent = 0

    async def sender(session: aiohttp.ClientSession) -> None:
        nonlocal sent
        while not stop.is_set():
            sent += 1
            body = status_webhook(f"wamid.{tag}{sent}", "sent")
            headers = {HEADER: sign(secret.encode(), body)}
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    answers.append(response.status)
            except aiohttp.ClientError as exc:  # refused, or cut mid-request
                answers.append(f"{type(exc).__name__}: {exc} at {len(answers)}")

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(sender(session) for _ in range(CLIENTS)))


async def test_a_rolling_restart_under_load_refuses_and_cuts_nothing(
    vhost_url: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        "WAPIPE_AMQP_URL": vhost_url,
        "WAPIPE_APP_SECRETS": ",".join(SECRETS),
        "WAPIPE_VERIFY_TOKEN": VERIFY_TOKEN,
        "WAPIPE_INGRESS_PORT": str(port),
        "WAPIPE_LOG_FORMAT": "json",
    }
    old_log, new_log = tmp_path / "old.log", tmp_path / "new.log"
    answers: list[int | str] = []
    stop = asyncio.Event()
    async with ingress(env, old_log) as old:
        await wait_until(lambda: listening(old_log), timeout=30)
        traffic = asyncio.create_task(load(f"http://127.0.0.1:{port}/webhook", stop, answers))
        try:
            await wait_until(lambda: len(answers) > 200, timeout=30)
            async with ingress(env, new_log) as new:
                await wait_until(lambda: listening(new_log), timeout=30)
                old.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(old.wait(), timeout=20) == 0
                after_old = len(answers)
                await wait_until(lambda: len(answers) > after_old + 200, timeout=30)
                stop.set()
                await traffic
                new.send_signal(signal.SIGTERM)
                assert await asyncio.wait_for(new.wait(), timeout=20) == 0
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await traffic
    refused_or_cut = [answer for answer in answers if answer != 200]
    assert refused_or_cut == [], f"{len(refused_or_cut)} of {len(answers)}: {refused_or_cut[:5]}"
    published = {message.message_id for message in await drain(vhost_url, "wa.status")}
    assert len(published) >= len(answers)  # every 200 confirmed in the queue
