"""The jobs the sender holds: each with its deliveries and its place in its recipient's line,
from its claim to its ack (``Holding``, the one owner of that table)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import Gauge

from wapipe.shared import topology
from wapipe.shared.schemas.jobs import Job, SendJob, customer_of
from wapipe.workers.sender.acks import Acks


def recipient_of(job: Job) -> str:
    """Who a job goes to, as the pair limit counts it (the one place that says so): the
    customer as the job names them (phone number or BSUID); a read receipt is its own (it paces
    nothing)."""
    return customer_of(job) if isinstance(job, SendJob) else f"read:{job.message_id}"


@dataclass(eq=False)
class Pending:
    """A job held until its turn, with every delivery of it (all acked when it is done)."""

    job: Job
    deliveries: list[AbstractIncomingMessage]
    seq: int  # its place in its recipient's line: when first taken in (ns), kept while parked
    attempts: int = 0  # transient failures so far
    # Of the job, read on every step of its lane: worked out once.
    key: str = field(init=False)
    recipient: str = field(init=False)
    paced: bool = field(init=False)  # a send (paced); a read receipt is not

    def __post_init__(self) -> None:
        self.key = self.job.idempotency_key
        self.recipient = recipient_of(self.job)
        self.paced = isinstance(self.job, SendJob)

    def alive(self) -> bool:
        """Whether some delivery of it can still be acked (its channel is open)."""
        for delivery in self.deliveries:
            with contextlib.suppress(Exception):  # a closed channel raises
                if not delivery.channel.is_closed:
                    return True
        return False

    def order(self) -> int:
        return self.seq


Parking = Sequence[tuple[Pending, topology.WaitQueue]]  # jobs and where each waits


class Holding:
    """The jobs held, by idempotency key, from their claim to their ack or give-back. Its
    gauge (``wapipe_sender_held``) follows it."""

    def __init__(self, gauge: Gauge, acks: Acks) -> None:
        self._by_key: dict[str, Pending] = {}
        self._gauge = gauge
        self._acks = acks

    def __len__(self) -> int:
        return len(self._by_key)

    def get(self, key: str) -> Pending | None:
        return self._by_key.get(key)

    def hold(self, pending: Pending) -> None:
        self._by_key[pending.key] = pending
        self._gauge.set(len(self._by_key))

    def forget(self, pending: Pending) -> None:
        """No longer held (a copy held under its key since, a repeat's, stays)."""
        if self._by_key.get(pending.key) is pending:
            del self._by_key[pending.key]
        self._gauge.set(len(self._by_key))

    async def ack(self, pending: Pending) -> None:
        """Done: forgotten, and every delivery of it acked (workers/sender/acks.py)."""
        self.forget(pending)
        self._acks.ack(pending.deliveries)

    async def give_back(self, pending: Pending, keep_place: Callable[[Pending], None]) -> None:
        """Back to the broker unacked, its place in line kept (``keep_place``: its lane's
        ``away``) for its redelivery, before the broker may redeliver it."""
        self.forget(pending)
        keep_place(pending)
        await self._acks.give_back(pending.deliveries)
