"""A job the sender holds: its deliveries, and its place in its recipient's line."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from aio_pika.abc import AbstractIncomingMessage

from shared import topology
from shared.schemas.jobs import Job, SendJob, customer_of


def recipient_of(job: Job) -> str:
    """The pacing key: the customer as the job names them (phone or BSUID); a read receipt is
    its own (it paces nothing)."""
    return customer_of(job) if isinstance(job, SendJob) else f"read:{job.message_id}"


@dataclass(eq=False)
class Pending:
    """A job held until its turn, with every delivery of it (all acked when it is done)."""

    job: Job
    deliveries: list[AbstractIncomingMessage]
    seq: int  # its place in its recipient's line: when first taken in (ns), kept while parked
    attempts: int = 0  # transient failures so far

    @property
    def key(self) -> str:
        return self.job.idempotency_key

    @property
    def recipient(self) -> str:
        return recipient_of(self.job)

    @property
    def paced(self) -> bool:
        return isinstance(self.job, SendJob)

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
