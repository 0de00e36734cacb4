"""What tests share: waiting on conditions, a breakable TCP proxy, reading queues, sample bodies."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractIncomingMessage
from yarl import URL

from wapipe.shared.storage.messages import InboundRow

DEFAULT_AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@dataclass(frozen=True)
class Broker:
    """A RabbitMQ: its AMQP URL and its management API (vhosts, queue depths)."""

    amqp_url: URL
    management_url: URL

    @classmethod
    def local(cls) -> Broker:
        """WAPIPE_AMQP_URL (default the local broker); its management API on port 15672."""
        amqp_url = URL(os.environ.get("WAPIPE_AMQP_URL", DEFAULT_AMQP_URL))
        management = os.environ.get("WAPIPE_TEST_MANAGEMENT_URL", f"http://{amqp_url.host}:15672")
        return cls(amqp_url, URL(management))

    @contextlib.contextmanager
    def vhost(self, name: str) -> Iterator[str]:
        """A fresh vhost, deleted afterwards with all it holds; yields its AMQP URL."""
        self.api("PUT", f"/vhosts/{name}")
        try:
            self.api(
                "PUT",
                f"/permissions/{name}/{self.amqp_url.user}",
                {"configure": ".*", "write": ".*", "read": ".*"},
            )
            yield str(self.amqp_url.with_path("/" + name))
        finally:
            self.api("DELETE", f"/vhosts/{name}")

    def api(self, method: str, path: str, body: object | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            str(self.management_url / "api") + path,
            data=data,
            method=method,
            headers={"content-type": "application/json"},
        )
        credentials = f"{self.amqp_url.user}:{self.amqp_url.password}".encode()
        request.add_header("authorization", "Basic " + base64.b64encode(credentials).decode())
        with urllib.request.urlopen(request, timeout=10) as response:
            answer = response.read()
        return json.loads(answer) if answer else None


async def answers(url: str, status: int | None = 200) -> bool:
    """Whether ``url`` answers ``status`` (None: anything short of a server error) now."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            return response.status == status if status is not None else response.status < 500
    except aiohttp.ClientError:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def publish_raw(
    amqp_url: str, exchange: str, messages: Sequence[tuple[str, aio_pika.Message]]
) -> None:
    """Publish (routing key, message) pairs with confirms, as a test's own producer."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        target = await channel.get_exchange(exchange, ensure=False)
        for start in range(0, len(messages), 500):
            chunk = messages[start : start + 500]
            await asyncio.gather(*(target.publish(m, routing_key=key) for key, m in chunk))


def cloudapi_dir() -> Path:
    """Sample bodies of the Cloud API: WAPIPE_CLOUDAPI_DIR, else the copy under tests/data."""
    if env := os.environ.get("WAPIPE_CLOUDAPI_DIR"):
        return Path(env)
    return Path(__file__).resolve().parent / "data" / "cloudapi"


def sample_bodies() -> list[Path]:
    return sorted((cloudapi_dir() / "webhooks").glob("*.json"))


async def wait_until(
    predicate: Callable[[], bool | Awaitable[bool]],
    timeout: float = 5.0,  # noqa: ASYNC109 - a deadline on polling, not on one awaited call
    step: float = 0.02,
) -> None:
    """Poll ``predicate`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)


async def drain(amqp_url: str, queue: str) -> list[AbstractIncomingMessage]:
    """Every message now in ``queue``, removed from it (basic.get until empty)."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        source = await channel.get_queue(queue, ensure=True)
        messages = []
        while (message := await source.get(no_ack=True, fail=False)) is not None:
            messages.append(message)
        return messages


class TcpProxy:
    """A TCP proxy between a client and the broker that a test can cut or stall.

    ``cut()`` closes every connection and refuses new ones (the broker is gone);
    ``stall()`` keeps connections open but forwards nothing (the broker hangs);
    ``restore()`` goes back to forwarding.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refusing = False
        self.port = 0

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._close_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    @property
    def connections(self) -> int:
        """Client connections open through the proxy now."""
        return len(self._writers) // 2  # each is a client's writer and the broker's

    def cut(self) -> None:
        self._refusing = True
        self._close_all()

    def stall(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._refusing = False
        self._flowing.set()

    def _close_all(self) -> None:
        for writer in list(self._writers):
            writer.close()
        self._writers.clear()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._refusing:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                await self._flowing.wait()
                writer.write(chunk)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


PHONE_NUMBER_ID = "118765432109876"
WABA_ID = "109876543210987"
CUSTOMER = "16315551181"


def status_webhook(
    wamid: str,
    status: str,
    *,
    code: int | None = None,
    timestamp: int = 1763990000,
    recipient: str = CUSTOMER,
    conversation_id: str | None = None,
) -> bytes:
    """A webhook body carrying one status of one message, shaped as Meta sends it."""
    update: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": str(timestamp),
        "recipient_id": recipient,
    }
    if code is not None:
        update["errors"] = [
            {
                "code": code,
                "title": f"title of {code}",
                "message": f"message of {code}",
                "error_data": {"details": f"details of {code}"},
            }
        ]
    if conversation_id is not None:
        update["conversation"] = {
            "id": conversation_id,
            "expiration_timestamp": str(timestamp + 86400),
            "origin": {"type": "utility"},
        }
        update["pricing"] = {
            "billable": True,
            "pricing_model": "PMP",
            "category": "utility",
            "type": "regular",
        }
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550101234", "phone_number_id": PHONE_NUMBER_ID},
        "statuses": [update],
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


def inbound_text_row(
    wamid: str,
    *,
    sender: str,
    at: float = 1763989000.0,
    payload: str = "{}",
    phone_number_id: str = "pn",
    received_at: float | None = None,
) -> InboundRow:
    """A customer's text message sent at ``at`` as the message worker stores it (received then,
    unless ``received_at`` says otherwise): no context, referral, forwarding or errors."""
    return InboundRow(
        wamid=wamid,
        phone_number_id=phone_number_id,
        waba_id="1",
        wa_id=sender,
        type="text",
        timestamp=int(at),
        received_at=at if received_at is None else received_at,
        payload=payload,
        context_wamid=None,
        context_from=None,
        forwarded=None,
        frequently_forwarded=None,
        referral=None,
        errors=None,
    )
