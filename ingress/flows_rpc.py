"""The Flows endpoint's side of the request/reply with the flow handlers, over RabbitMQ.

A request is published to ``wa.flows`` (mandatory, so with no queue it fails at once) with
``reply_to`` RabbitMQ's direct reply-to pseudo-queue and a fresh ``correlation_id``; its
``expiration`` is its deadline, so a request nobody took in time is dropped by the broker. The
reply comes back on the same channel, matched to its waiter by the correlation id. Direct
reply-to needs no queue per request and no declare: a reply whose requester has gone (it
timed out, or the ingress restarted) is simply dropped by the broker.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Final

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractRobustConnection,
    DeliveryMode,
)
from aio_pika.exceptions import AMQPError, DeliveryError, PublishError

from wapipe.shared import amqp, topology
from wapipe.shared.flows.protocol import DEADLINE_HEADER, FlowReply, reply_decoder

log = logging.getLogger(__name__)

REPLY_TO: Final = "amq.rabbitmq.reply-to"


class HandlersUnavailable(Exception):
    """The request could not be handed over, or no answer came in time. Its message names the
    reason, never the request's content."""


class FlowsBroker:
    """Connects in the background; until connected every ``ask`` fails at once."""

    def __init__(self, amqp_url: str, connection_name: str) -> None:
        self._amqp_url = amqp_url
        self._connection_name = connection_name
        self._connection: AbstractRobustConnection | None = None
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None
        self._waiting: dict[str, asyncio.Future[FlowReply]] = {}

    @property
    def ready(self) -> bool:
        return self._channel is not None and not self._channel.is_closed

    async def connect(self) -> None:
        self._connection = await amqp.connect(self._amqp_url, self._connection_name)
        channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
        reply_queue = await channel.get_queue(REPLY_TO, ensure=False)
        await reply_queue.consume(self._on_reply, no_ack=True)
        self._exchange = await channel.get_exchange(topology.FLOWS_EXCHANGE, ensure=False)
        self._channel = channel
        log.info("flows endpoint connected to the broker")

    async def close(self) -> None:
        for waiter in self._waiting.values():
            waiter.cancel()
        if self._connection is not None:
            await amqp.close(self._connection)

    async def ask(self, request_body: bytes, deadline_s: float) -> FlowReply:
        """The handlers' reply to ``request_body`` (a FlowRequest's JSON) within
        ``deadline_s``, or ``HandlersUnavailable``."""
        exchange = self._exchange
        if exchange is None or not self.ready:
            raise HandlersUnavailable("broker not connected")
        correlation_id = uuid.uuid4().hex
        waiter: asyncio.Future[FlowReply] = asyncio.get_running_loop().create_future()
        self._waiting[correlation_id] = waiter
        try:
            async with asyncio.timeout(deadline_s):
                await self._publish(exchange, request_body, correlation_id, deadline_s)
                return await waiter
        except TimeoutError:
            raise HandlersUnavailable(f"no answer within {deadline_s:g} s") from None
        finally:
            self._waiting.pop(correlation_id, None)

    @staticmethod
    async def _publish(
        exchange: AbstractExchange, body: bytes, correlation_id: str, deadline_s: float
    ) -> None:
        message = aio_pika.Message(
            body,
            content_type="application/json",
            correlation_id=correlation_id,
            reply_to=REPLY_TO,
            expiration=deadline_s,
            # Whole milliseconds: an AMQP table would carry a float as 32 bits, minutes off.
            headers={DEADLINE_HEADER: int((time.time() + deadline_s) * 1000)},
            delivery_mode=DeliveryMode.NOT_PERSISTENT,  # worthless after its deadline anyway
        )
        try:
            await exchange.publish(message, routing_key=topology.FLOWS_ROUTING_KEY, mandatory=True)
        except (DeliveryError, PublishError):
            raise HandlersUnavailable("the request queue refused the request") from None
        except (AMQPError, ConnectionError) as exc:
            raise HandlersUnavailable(f"broker: {type(exc).__name__}") from None

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        waiter = self._waiting.get(message.correlation_id or "")
        if waiter is None or waiter.done():
            return  # a reply that came after its deadline
        try:
            waiter.set_result(reply_decoder.decode(message.body))
        except Exception:  # a malformed reply: the request fails, the consumer lives on
            waiter.set_exception(HandlersUnavailable("an unreadable reply"))
