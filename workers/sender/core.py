"""The sender's process state: the jobs it holds, a lane per number, its tasks.

``Sender`` is each lane's host (workers/sender/lane.py ``LaneHost``): it runs what a lane
decides (a send, a park) as tasks of its own, and settles held deliveries through the runtime
(workers/runtime.py). A task that dies of an error stops the process: better restarted than
silently not consuming.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from shared.amqp import EventPublisher, Outgoing
from shared.cloudapi.client import CloudApi
from shared.schemas.jobs import routing_key
from shared.settings import Settings, number_rates
from workers import runtime
from workers.pacing import PairRate, Throughput
from workers.runtime import SHUTDOWN_STEP_S
from workers.sender import parking
from workers.sender.held import Parking, Pending
from workers.sender.journal import Journal
from workers.sender.lane import Lane
from workers.sender.metrics import SenderMetrics
from workers.sender.send import send
from workers.sender.templates import Templates

log = logging.getLogger(__name__)

TEND_EVERY_S = 2.0  # how often lanes are tended and unknown outcomes looked for


class SenderFailed(RuntimeError):
    """A task the sender cannot do without died: the process stops, to be restarted."""


class Sender:
    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        api: CloudApi,
        events: EventPublisher,
        metrics: SenderMetrics,
        stop: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.api = api
        self.events = events
        self.metrics = metrics
        self.journal = Journal(engine, metrics.unavailable)
        self.templates = Templates(engine, check=settings.sender_check_templates)
        self.lanes: dict[str, Lane] = {}
        self.holding: dict[str, Pending] = {}  # by idempotency key, from claim to ack
        self.files_dir = (
            Path(settings.sender_files_dir).resolve() if settings.sender_files_dir else None
        )
        self.failure: BaseException | None = None
        self._stopping = False
        self._stop = stop
        self._rates = number_rates(settings)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sends: set[asyncio.Task[None]] = set()
        self._parking_paused_until = 0.0  # monotonic

    def lane(self, number: str) -> Lane:
        lane = self.lanes.get(number)
        if lane is None:
            settings = self.settings
            throughput = Throughput(self._rates.get(number, settings.sender_rate_per_s))
            pairs = PairRate(settings.sender_pair_interval_s, settings.sender_pair_burst)
            lane = self.lanes[number] = Lane(self, number, throughput, pairs)
            self.spawn(lane.run())
        return lane

    # --- a lane's host ---

    @property
    def stopping(self) -> bool:
        return self._stopping

    def may_park(self, now: float) -> bool:
        return not self._stopping and now >= self._parking_paused_until

    def park(self, lane: Lane, parking: Parking) -> None:
        self.spawn(self._park(lane, parking))

    def dispatch(self, lane: Lane, pending: Pending) -> None:
        self.spawn(send(self, lane, pending), send=True)

    def paused(self, lane: Lane, paused: bool) -> None:
        self.metrics.paused.labels(lane.number).set(1 if paused else 0)
        if not paused:
            self.api.reload_token()

    # --- held deliveries ---

    def forget(self, pending: Pending) -> None:
        if self.holding.get(pending.key) is pending:
            del self.holding[pending.key]
        self.metrics.held.set(len(self.holding))

    async def ack(self, pending: Pending) -> None:
        self.forget(pending)
        await runtime.ack(pending.deliveries)

    async def give_back(self, pending: Pending) -> None:
        """Back to the broker unacked, its place in line kept for its redelivery."""
        self.forget(pending)
        if (lane := self.lanes.get(pending.job.phone_number_id)) is not None:
            lane.away(pending)
        await runtime.give_back(pending.deliveries)

    async def _park(self, lane: Lane, parked: Parking) -> None:
        """Publish each job to its wait queue with its place in line, in this order; ack them
        once the broker has them all."""
        messages = [
            Outgoing(
                queue.name,
                routing_key(pending.job.phone_number_id),
                pending.key,
                pending.deliveries[0].body,
                headers=parking.headers(pending.seq, pending.attempts),
            )
            for pending, queue in parked
        ]
        taken = [list(pending.deliveries) for pending, _ in parked]
        try:
            await self.events.publish(messages)
        except Exception as exc:
            log.warning("cannot park jobs; held", extra={"jobs": len(parked), "error": str(exc)})
            self._parking_paused_until = time.monotonic() + parking.PARKING_RETRY_S
            for pending, _ in parked:  # (a copy that did reach a wait queue is a repeat)
                if pending.alive():
                    lane.unpark(pending)
                else:  # the connection was lost meanwhile: it comes again, to its old place
                    self.forget(pending)
                    lane.away(pending)
            return
        self.metrics.parked.inc(len(parked))
        for (pending, _), deliveries in zip(parked, taken, strict=True):
            if len(pending.deliveries) > len(deliveries):
                # It came again while being parked (its own copy, back already, or a repeat):
                # that delivery may now be its only one: held, not acked with the rest.
                pending.deliveries = pending.deliveries[len(deliveries) :]
                lane.returned(pending.recipient, pending.key)
                lane.add(pending)
            else:
                self.forget(pending)
            await runtime.ack(deliveries)

    # --- tasks ---

    def spawn(self, work: Coroutine[object, object, None], *, send: bool = False) -> None:
        task = asyncio.ensure_future(work)
        for tasks in (self._tasks, self._sends) if send else (self._tasks,):
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """A task that dies of an error stops the process (a send's errors are all handled:
        one that escapes is a bug)."""
        if task.cancelled() or task.exception() is None:
            return
        error = task.exception()
        log.critical("sender task failed, stopping", exc_info=error)
        if self.failure is None:
            self.failure = error
        self._stop.set()

    def on_reconnect(self, *_: object) -> None:
        """The broker connection came back: the deliveries held are dead (RabbitMQ gave them
        back to the queue, maybe to another replica now active on the shard); drop the jobs
        that have no live delivery, and let every number be silent for a second."""
        for lane in self.lanes.values():
            for pending in lane.drop(lambda p: not p.alive()):
                self.forget(pending)
                lane.away(pending)
            lane.warm_up()
        log.warning("broker connection restored; held jobs dropped, to come again")

    def stop_sending(self) -> None:
        """Nothing more leaves (before the shards are handed to a standby replica)."""
        self._stopping = True
        for lane in self.lanes.values():
            lane.stop()

    async def drain(self, timeout_s: float) -> None:
        """Wait for the sends in flight (bounded); held jobs go back to the queue unacked."""
        if self._sends:
            await asyncio.wait(self._sends, timeout=timeout_s)

    async def cancel(self) -> None:
        """Cancel every task and let each end (a transaction rolled back) before the engine
        is disposed of; bounded, so that a stuck one cannot keep the process alive."""
        for _ in range(2):  # once more for one that awaited again while ending
            tasks = [task for task in self._tasks if not task.done()]
            if not tasks:
                return
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=SHUTDOWN_STEP_S)
