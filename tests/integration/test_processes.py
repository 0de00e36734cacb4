"""The real commands as processes: `wapipe ingress` shuts down gracefully and logs JSON lines,
`wapipe up` runs the system on its local defaults."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
from sqlalchemy import select
from yarl import URL

from tests.conftest import SECRETS, VERIFY_TOKEN
from tests.helpers import TcpProxy, answers, drain, free_port, sample_bodies, wait_until
from wapipe.shared.signature import HEADER, sign
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database

STATUS_BODY = next(path for path in sample_bodies() if path.name == "status_sent.json").read_bytes()


@asynccontextmanager
async def running(*args: str, env: dict[str, str]) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wapipe",
        *args,
        env={**os.environ, **env},
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # a group of its own: `up`'s children die with it if a test fails
    )
    try:
        yield process
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()


async def post_webhook(port: int, body: bytes) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"http://127.0.0.1:{port}/webhook",
            data=body,
            headers={HEADER: sign(SECRETS[0].encode(), body)},
        ) as response,
    ):
        return response.status


async def refuses(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_sigterm_finishes_the_request_in_flight_then_exits(vhost_url: str) -> None:
    target = URL(vhost_url)
    async with TcpProxy(target.host or "127.0.0.1", target.port or 5672) as proxy:
        port = free_port()
        env = {
            "WAPIPE_AMQP_URL": str(target.with_host("127.0.0.1").with_port(proxy.port)),
            "WAPIPE_APP_SECRETS": ",".join(SECRETS),
            "WAPIPE_VERIFY_TOKEN": VERIFY_TOKEN,
            "WAPIPE_INGRESS_PORT": str(port),
            "WAPIPE_CONFIRM_TIMEOUT_S": "20",
            "WAPIPE_LOG_FORMAT": "auto",  # stderr is a pipe: JSON lines
        }
        async with running("ingress", env=env) as process:
            await wait_until(lambda: answers(f"http://127.0.0.1:{port}/readyz"), timeout=20)

            proxy.stall()  # the broker holds the confirm: the request stays in flight
            in_flight = asyncio.create_task(post_webhook(port, STATUS_BODY))

            async def holding() -> bool:
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(f"http://127.0.0.1:{port}/metrics") as response,
                ):
                    return "wapipe_ingress_in_flight 1.0" in await response.text()

            await wait_until(holding, timeout=5)
            process.send_signal(signal.SIGTERM)
            await wait_until(lambda: refuses(port), timeout=5)  # no longer accepting

            proxy.restore()
            assert await asyncio.wait_for(in_flight, timeout=10) == 200
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0
            assert process.stderr is not None
            log = (await process.stderr.read()).decode()
    assert len(await drain(vhost_url, "wa.status")) == 1

    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert {"ts", "level", "logger", "msg"} <= set(lines[0])
    assert any(line["msg"] == "broker connected" for line in lines)
    for secret in (*SECRETS, VERIFY_TOKEN, "guest:guest"):
        assert secret not in log


def ingress_env(broker: URL, proxy: TcpProxy, port: int) -> dict[str, str]:
    """An ingress on ``port`` reaching ``broker`` through ``proxy``."""
    return {
        "WAPIPE_AMQP_URL": str(broker.with_host("127.0.0.1").with_port(proxy.port)),
        "WAPIPE_APP_SECRETS": SECRETS[0],
        "WAPIPE_VERIFY_TOKEN": VERIFY_TOKEN,
        "WAPIPE_INGRESS_PORT": str(port),
    }


async def test_sigterm_while_the_broker_is_not_answering_yet_exits_promptly(
    vhost_url: str,
) -> None:
    target = URL(vhost_url)
    async with TcpProxy(target.host or "127.0.0.1", target.port or 5672) as proxy:
        proxy.stall()  # connections open, nothing answers: the first connect hangs
        port = free_port()
        async with running("ingress", env=ingress_env(target, proxy, port)) as process:
            await wait_until(lambda: answers(f"http://127.0.0.1:{port}/readyz", 503), timeout=20)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0
        proxy.restore()


async def test_the_ingress_listens_once_its_broker_is_connected(vhost_url: str) -> None:
    # Beside a running ingress (a roll), a new one listening before its broker could only answer
    # 503 to the connections the kernel hands it: it waits for the broker (ingress/app.py).
    target = URL(vhost_url)
    async with TcpProxy(target.host or "127.0.0.1", target.port or 5672) as proxy:
        proxy.stall()
        port = free_port()
        async with running("ingress", env=ingress_env(target, proxy, port)) as process:
            await wait_until(lambda: proxy.connections > 0, timeout=20)
            url = f"http://127.0.0.1:{port}/healthz"
            for _ in range(10):  # 2 s of its 10-s wait for the broker: not listening
                assert not await answers(url, None)
                await asyncio.sleep(0.2)
            proxy.restore()
            await wait_until(lambda: answers(f"http://127.0.0.1:{port}/readyz"), timeout=20)
            process.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(process.wait(), timeout=15) == 0


async def test_wapipe_up_runs_the_system_on_local_defaults(vhost_url: str, tmp_path: Path) -> None:
    """The README's run command: a customer of the sandbox writes, the workers store it."""
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'wapipe.db'}"
    env = {
        "WAPIPE_AMQP_URL": vhost_url,
        "WAPIPE_DATABASE_URL": database_url,
        "WAPIPE_INGRESS_PORT": str(port),
        "WAPIPE_APP_SECRETS": "",
        "WAPIPE_VERIFY_TOKEN": "",
        "WAPIPE_ACCESS_TOKEN": "",
        "WAPIPE_GRAPH_URL": "",
    }
    async with running("up", env=env) as process:
        await wait_until(lambda: answers(f"http://127.0.0.1:{port}/readyz"), timeout=30)
        await wait_until(lambda: answers("http://127.0.0.1:8090/_sandbox/state"), timeout=30)
        assert await answers(
            f"http://127.0.0.1:{port}/webhook?hub.mode=subscribe"
            "&hub.verify_token=local-verify-token&hub.challenge=7"
        )
        customer = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wapipe",
            "sandbox",
            "customer",
            "send",
            "16315551181",
            "--text",
            "hello from a customer",
            env={**os.environ, **env},
            stdout=asyncio.subprocess.DEVNULL,
        )
        assert await asyncio.wait_for(customer.wait(), timeout=20) == 0

        async with open_database(database_url) as engine:

            async def stored() -> bool:
                async with engine.connect() as connection:
                    rows = await connection.execute(select(schema.messages.c.payload))
                    return any("hello from a customer" in payload for payload in rows.scalars())

            await wait_until(stored, timeout=15, step=0.1)
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), timeout=20) == 0


async def test_unreachable_broker_and_bad_setting_fail_with_a_clear_message() -> None:
    for env, code, says in (
        ({"WAPIPE_AMQP_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/"}, 3, "WAPIPE_AMQP_URL"),
        ({"WAPIPE_CONFIRM_TIMEOUT_S": "soon"}, 3, "WAPIPE_CONFIRM_TIMEOUT_S"),
    ):
        async with running("topology", env=env) as process:
            assert await asyncio.wait_for(process.wait(), timeout=20) == code
            assert process.stderr is not None
            assert says in (await process.stderr.read()).decode()


async def test_ingress_refuses_to_start_without_its_secrets() -> None:
    env = {"WAPIPE_APP_SECRETS": "", "WAPIPE_VERIFY_TOKEN": "", "WAPIPE_INGRESS_PORT": "1"}
    async with running("ingress", env=env) as process:
        assert await asyncio.wait_for(process.wait(), timeout=20) == 3
        assert process.stderr is not None
        message = (await process.stderr.read()).decode()
    assert "WAPIPE_APP_SECRETS, WAPIPE_VERIFY_TOKEN" in message
