"""Connecting to the broker (shared/amqp.py), against a port where none listens."""

from __future__ import annotations

import asyncio
import socket

import pytest

from tests.helpers import wait_until
from wapipe.shared import amqp

NOWHERE = "amqp://guest:guest@127.0.0.1:1/"


def test_a_connection_is_named_for_its_role_and_host() -> None:
    assert amqp.connection_name("worker-status") == f"wapipe-worker-status@{socket.gethostname()}"


async def test_without_wait_an_unreachable_broker_raises_at_once() -> None:
    with pytest.raises(ConnectionError):
        await amqp.connect(NOWHERE, "test", wait=False)


async def test_a_connect_cancelled_while_the_broker_is_away_leaves_no_task_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    before = asyncio.all_tasks()
    connecting = asyncio.ensure_future(amqp.connect(NOWHERE, "test"))
    await wait_until(lambda: "broker unreachable, retrying" in caplog.text)
    connecting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await connecting
    await wait_until(lambda: not (asyncio.all_tasks() - before - {connecting}))


async def test_a_connect_cancelled_mid_handshake_leaves_no_task_behind() -> None:
    """A peer that takes the TCP connection and never speaks AMQP (a stuck broker)."""
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    before = asyncio.all_tasks()
    try:
        connecting = asyncio.ensure_future(
            amqp.connect(f"amqp://guest:guest@127.0.0.1:{port}/", "test")
        )
        await wait_until(lambda: bool(accepted))
        connecting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await connecting
        await wait_until(lambda: not (asyncio.all_tasks() - before - {connecting}))
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()


def test_the_broker_url_keeps_its_own_heartbeat_and_gets_ours_otherwise() -> None:
    ours = amqp.with_defaults("amqp://guest:guest@broker:5672/wapipe")
    assert (ours.query["heartbeat"], ours.query["reconnect_interval"]) == ("10", "1.0")
    theirs = amqp.with_defaults("amqp://guest:guest@broker:5672/wapipe?heartbeat=30")
    assert (theirs.query["heartbeat"], theirs.query["reconnect_interval"]) == ("30", "1.0")
    assert theirs.path == "/wapipe"


async def test_a_coalescing_writer_holds_writes_after_a_send_until_drain_or_close() -> None:
    received = bytearray()
    closed = asyncio.Event()

    async def record(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while chunk := await reader.read(1024):
            received.extend(chunk)
        closed.set()
        writer.close()

    server = await asyncio.start_server(record, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    loop = asyncio.get_running_loop()
    try:
        reader = asyncio.StreamReader()
        protocol = asyncio.StreamReaderProtocol(reader)
        transport, _ = await loop.create_connection(lambda: protocol, "127.0.0.1", port)
        writer = amqp.CoalescingWriter(transport, protocol, reader, loop, hold_s=60.0)
        writer.write(b"a")  # after a quiet spell: at the loop's next turn
        await wait_until(lambda: received == b"a")
        writer.write(b"b")  # right after a send: held (for a minute here)
        writer.writelines([b"c", b"d"])
        await writer.drain()  # sends what is held, as a drained frame must have left
        await wait_until(lambda: received == b"abcd")
        writer.write(b"e")
        writer.close()  # sends what is held before closing
        await asyncio.wait_for(closed.wait(), timeout=5)
        assert received == b"abcde"
    finally:
        server.close()
        await server.wait_closed()
