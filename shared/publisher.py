"""Publishing send jobs from Python, the way every publisher should (docs/publishing.md):

    async with JobPublisher(settings) as jobs:
        await jobs.publish(SendJob(idempotency_key=..., phone_number_id=..., to=..., message=...))

One robust connection, named so the broker shows who it is; one channel with publisher confirms.
Each job goes to ``wa.outbound`` with routing key ``send.<phone_number_id>``, persistent, as JSON,
``message_id`` its idempotency key, mandatory: ``publish`` returns once the broker has it on disk
in a queue. Publishing a job again (say, after an error here) is safe: the sender sends one
idempotency key once.

    PublishError           the broker did not take the job
      |-- JobUnroutable    no queue is bound for its routing key (is the topology declared?)
      '-- JobRefused       the broker refused it (a full queue refuses publishes)
    msgspec.ValidationError  the job breaks the contract; nothing was published
"""

from __future__ import annotations

from types import TracebackType
from typing import Self

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection

from wapipe.shared import amqp
from wapipe.shared.schemas.jobs import Job, encode_job, routing_key
from wapipe.shared.settings import Settings
from wapipe.shared.topology import OUTBOUND_EXCHANGE


class PublishError(Exception):
    """The broker did not take a job."""


class JobUnroutable(PublishError):
    def __init__(self, key: str, routing_key: str) -> None:
        super().__init__(
            f"job {key}: no queue takes routing key {routing_key!r} on {OUTBOUND_EXCHANGE} "
            "(declare the topology: `wapipe topology`)"
        )
        self.key = key
        self.routing_key = routing_key


class JobRefused(PublishError):
    def __init__(self, key: str) -> None:
        super().__init__(f"job {key}: refused by the broker (nack): is the send queue full?")
        self.key = key


class JobPublisher:
    def __init__(
        self,
        settings: Settings,
        *,
        name: str | None = None,
        connection: AbstractConnection | None = None,
    ) -> None:
        """``connection``: one of the caller's to publish on (left open), else one of its own."""
        self._amqp_url = settings.amqp_url
        self._name = name or amqp.connection_name("publisher")
        self._given = connection
        self._connection: AbstractConnection | None = None
        self._channel: AbstractChannel | None = None

    async def __aenter__(self) -> Self:
        self._connection = self._given or await amqp.connect(self._amqp_url, self._name, wait=False)
        try:
            channel = await self._connection.channel(publisher_confirms=True, on_return_raises=True)
            await channel.get_exchange(OUTBOUND_EXCHANGE, ensure=True)  # declared? (passive)
            self._channel = channel
        except aiormq.exceptions.ChannelNotFoundEntity:
            await self._close()
            raise PublishError(
                f"the exchange {OUTBOUND_EXCHANGE} does not exist (declare the topology: "
                "`wapipe topology`)"
            ) from None
        except BaseException:
            await self._close()
            raise
        return self

    async def _close(self) -> None:
        if self._connection is not None and self._connection is not self._given:
            await self._connection.close()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._channel is not None and self._given is not None:
            await self._channel.close()
        await self._close()

    async def publish(self, job: Job) -> None:
        """Publish ``job`` and wait for the broker's confirm. Raises as the docstring says."""
        assert self._channel is not None, "use JobPublisher as `async with`"
        body = encode_job(job)  # checks the contract's limits first
        key = routing_key(job.phone_number_id)
        message = amqp.Outgoing(OUTBOUND_EXCHANGE, key, job.idempotency_key, body)
        try:
            await amqp.publish(await amqp.underlay(self._channel), message)
        except aiormq.exceptions.DeliveryError as exc:
            if exc.message is not None:  # basic.return: no queue matched
                raise JobUnroutable(job.idempotency_key, key) from None
            raise JobRefused(job.idempotency_key) from None
