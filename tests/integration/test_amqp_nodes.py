"""Several broker nodes in WAPIPE_AMQP_URL (shared/amqp.py): a connection takes the first that
answers, says which, and a robust connection that loses its node goes on to the next. Each
"node" here is a TCP proxy to the local broker that the test can cut."""

from __future__ import annotations

import contextlib

import pytest
from yarl import URL

from tests.helpers import TcpProxy, wait_until
from wapipe.shared import amqp

DOWN = "amqp://guest:guest@127.0.0.1:1/"  # no broker listens there


def through(proxy: TcpProxy, vhost_url: str) -> str:
    return str(URL(vhost_url).with_host("127.0.0.1").with_port(proxy.port))


def reached(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The nodes shared/amqp.py logged as reached, in order."""
    return [
        getattr(r, "node", "")
        for r in caplog.records
        if r.name == "wapipe.shared.amqp" and r.msg == "broker node reached"
    ]


async def test_a_service_skips_a_node_that_is_down_and_says_which_it_reached(
    vhost_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="wapipe.shared.amqp")
    async with TcpProxy("127.0.0.1", URL(vhost_url).port or 5672) as node:
        connection = await amqp.connect(f"{DOWN},{through(node, vhost_url)}", "test-nodes")
        try:
            channel = await connection.channel()
            await channel.declare_queue(exclusive=True)
            assert reached(caplog) == [f"127.0.0.1:{node.port}"]
        finally:
            await amqp.close(connection)


async def test_a_lost_node_is_followed_by_the_next_one(
    vhost_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="wapipe.shared.amqp")
    port = URL(vhost_url).port or 5672
    async with TcpProxy("127.0.0.1", port) as first, TcpProxy("127.0.0.1", port) as second:
        urls = f"{through(first, vhost_url)},{through(second, vhost_url)}"
        connection = await amqp.connect(urls, "test-nodes")
        try:
            channel = await connection.channel()
            assert reached(caplog) == [f"127.0.0.1:{first.port}"]
            first.cut()  # the node goes away for good: the connection must not wait for it
            await wait_until(lambda: len(reached(caplog)) == 2, timeout=20)
            assert reached(caplog)[1] == f"127.0.0.1:{second.port}"
            await wait_until(lambda: not channel.is_closed, timeout=10)
            await channel.declare_queue(exclusive=True)  # the channel works on the new node
        finally:
            await amqp.close(connection)


async def test_a_command_takes_the_first_node_that_answers(
    vhost_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="wapipe.shared.amqp")
    async with TcpProxy("127.0.0.1", URL(vhost_url).port or 5672) as node:
        connection = await amqp.connect_once(f"{DOWN},{through(node, vhost_url)}", "test-once")
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(connection.close)
            assert reached(caplog) == [f"127.0.0.1:{node.port}"]


async def test_every_node_down_is_the_last_ones_error_at_once() -> None:
    with pytest.raises(ConnectionError):
        await amqp.connect(f"{DOWN},{DOWN}", "test-nodes", wait=False)
    with pytest.raises(ConnectionError):
        await amqp.connect_once(f"{DOWN},{DOWN}", "test-once")
