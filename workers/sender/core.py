"""The sender's process state: a lane per number, and the tasks that carry out what lanes
decide.

``Sender`` assembles the parts, each given what it uses: the held jobs (``Holding``,
workers/sender/held.py), the sends (``Sending``, workers/sender/send.py), the parks (``Parker``,
workers/sender/parking.py), the intake (workers/sender/intake.py). It is each lane's host
(workers/sender/lane.py ``LaneHost``): it runs a lane's sends and parks as tasks of its own. A
task that dies of an error stops the process: better restarted than silently not consuming.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared.amqp import EventPublisher
from wapipe.shared.cloudapi.client import CloudApi
from wapipe.shared.settings import Settings, number_rates
from wapipe.workers.pacing import PairRate, Throughput
from wapipe.workers.runtime import SHUTDOWN_STEP_S
from wapipe.workers.sender.acks import Acks
from wapipe.workers.sender.held import Holding, Parking
from wapipe.workers.sender.intake import Intake
from wapipe.workers.sender.journal import Journal
from wapipe.workers.sender.lane import Go, Lane
from wapipe.workers.sender.metrics import SenderMetrics
from wapipe.workers.sender.parking import Parker
from wapipe.workers.sender.send import Rules, Sending
from wapipe.workers.sender.templates import Templates
from wapipe.workers.storage import Transactions

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
        self.events = events
        self.metrics = metrics
        self._api = api
        # The journal's and the template check's transactions (the settler's and the failed
        # statuses' stay the engine's: they publish before they commit, on the event loop).
        self.transactions = Transactions(engine)
        self.journal = Journal(self.transactions, metrics.unavailable)
        self.lanes: dict[str, Lane] = {}
        self.acks = Acks()
        self._holding = Holding(metrics.held, self.acks)
        self._parker = Parker(events, self._holding, self.acks, metrics.parked)
        files_dir = Path(settings.sender_files_dir).resolve() if settings.sender_files_dir else None
        self._sending = Sending(
            api=api,
            journal=self.journal,
            templates=Templates(self.transactions, check=settings.sender_check_templates),
            events=events,
            holding=self._holding,
            metrics=metrics,
            rules=Rules(files_dir, settings.sender_max_attempts, settings.sender_pause_s),
        )
        self.intake = Intake(
            lane_of=self.lane,
            holding=self._holding,
            acks=self.acks,
            journal=self.journal,
            events=events,
            metrics=metrics,
        )
        self.failure: BaseException | None = None
        self._stopping = False
        self._stop = stop
        self._rates = number_rates(settings)
        self._tasks: set[asyncio.Task[None]] = set()
        self._sends: set[asyncio.Task[None]] = set()

    def lane(self, number: str) -> Lane:
        """The number's lane, made (and run) on its first job."""
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
        return not self._stopping and self._parker.may_park(now)

    def park(self, lane: Lane, parking: Parking) -> None:
        self.spawn(self._parker.park(lane, parking))

    def dispatch(self, lane: Lane, go: Go) -> None:
        self.spawn(self._sending.send(lane, go.pending, go.turn), send=True)

    def paused(self, lane: Lane, paused: bool) -> None:
        self.metrics.paused.labels(lane.number).set(1 if paused else 0)
        if not paused:
            self._api.reload_token()

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
                self._holding.forget(pending)
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
        """Cancel every task and let each end (a transaction rolled back; bounded, so that a
        stuck one cannot keep the process alive), then close the transactions' connection,
        before the engine is disposed of. On SQLite that close waits for a transaction still in
        the database's thread, which rolls back unless its COMMIT had begun (its caller is gone):
        at most as long as the busy timeout, when another process holds the write lock."""
        for _ in range(2):  # once more for one that awaited again while ending
            tasks = [task for task in self._tasks if not task.done()]
            if not tasks:
                break
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=SHUTDOWN_STEP_S)
        # After the transaction in the thread, if one was running when its task was cancelled:
        # rolled back unless its COMMIT had begun (workers/storage.py Transactions.run).
        await self.transactions.close()
