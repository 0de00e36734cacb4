"""Webhooks back to the receiver, signed and delivered as Meta delivers them.

- Signed with the app secret over the exact bytes sent (``X-Hub-Signature-256``), serialised as
  Meta serialises: compact, non-ASCII as ``\\uXXXX``, ``/`` as ``\\/`` (docs/cloudapi/webhooks.md).
- Order: a message's statuses are posted one after the other, in the order they are due (with no
  chaos: sent, delivered, read), whatever the receiver's timing.
- Chaos, on request and reproducible: ``Chaos`` decides every delay, duplicate and reordering from
  one seeded RNG, in the order the sandbox accepts sends, so a seed replays a run.
- Batching: up to ``batch_max`` due changes travel in one body.
- Retries: a delivery that is not answered 200 is retried with doubling back-off, as Meta does
  (``Retry``); every attempt and the receiver's answer is kept for ``/_sandbox/webhooks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import itertools
import json
import logging
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from wapipe.shared.signature import HEADER, sign

log = logging.getLogger(__name__)

MAX_KEPT_DELIVERIES: Final = 50_000


@dataclass(frozen=True)
class Chaos:
    """How far the sandbox strays from one prompt webhook per status, in order."""

    seed: int = 0
    delay_s: tuple[float, float] = (0.0, 0.0)  # between one status and the next, uniform
    duplicate_rate: float = 0.0  # each webhook is sent twice with this probability
    reorder_rate: float = 0.0  # `read` arrives before `delivered` with this probability
    batch_max: int = 1  # changes per body at the most

    def __post_init__(self) -> None:
        low, high = self.delay_s
        if not (
            0 <= low <= high
            and 0 <= self.duplicate_rate <= 1
            and 0 <= self.reorder_rate <= 1
            and self.batch_max >= 1
        ):
            raise ValueError("chaos: delays 0 <= MIN <= MAX, rates from 0 to 1, batch_max >= 1")


@dataclass(frozen=True)
class Retry:
    first_s: float = 1.0  # the first retry comes this long after the first try, then doubling
    factor: float = 2.0
    max_attempts: int = 10  # with the defaults, the last try comes some 17 minutes after the first
    timeout_s: float = 10.0  # a receiver silent this long has not answered


def encode_like_meta(document: Any) -> bytes:
    return (
        json.dumps(document, ensure_ascii=True, separators=(",", ":")).replace("/", "\\/").encode()
    )


@dataclass(frozen=True)
class Change:
    """One change of a webhook body: a field's value, for a WABA."""

    waba_id: str
    field: str
    value: dict[str, Any]
    entry_time: int | None = None  # entry[].time, which template and account fields carry
    order_key: str | None = None  # not sent: which changes must keep their order


def envelope(changes: Iterable[Change]) -> dict[str, Any]:
    """A webhook body of these changes, one entry per WABA (and entry time), in order."""
    entries: dict[tuple[str, int | None], list[dict[str, Any]]] = {}
    for change in changes:
        entries.setdefault((change.waba_id, change.entry_time), []).append(
            {"value": change.value, "field": change.field}
        )
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": waba_id, **({"time": time} if time is not None else {}), "changes": changes}
            for (waba_id, time), changes in entries.items()
        ],
    }


@dataclass
class Delivery:
    """One webhook body and what became of it."""

    id: int
    body: bytes
    attempts: list[dict[str, Any]] = field(default_factory=list)  # {"at", "status" | "error"}
    delivered: bool = False


@dataclass(order=True)
class _Due:
    at: float
    order: int
    change: Change = field(compare=False)


class WebhookSender:
    """Holds changes until they are due, then posts them to the receiver."""

    def __init__(
        self,
        url: str,
        secret: str,
        chaos: Chaos,
        retry: Retry,
        on_attempt: Callable[[Delivery], None] | None = None,
    ) -> None:
        self.url = url
        self._on_attempt = on_attempt  # the console's feed: each attempt and its answer
        self._secret = secret.encode()
        self.chaos = chaos
        self.retry = retry
        self.rng = random.Random(chaos.seed)  # noqa: S311 - chaos, not cryptography
        self.deliveries: dict[int, Delivery] = {}
        self._due: list[_Due] = []
        self._order = itertools.count()
        self._ids = itertools.count(1)
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._posting: set[asyncio.Task[None]] = set()
        self._last_post: dict[str, asyncio.Task[None]] = {}  # by order key

    def schedule(
        self,
        at: float,
        waba_id: str,
        field_name: str,
        value: dict[str, Any],
        entry_time: int | None = None,
        order_key: str | None = None,
    ) -> None:
        """Send this change at loop time ``at`` (a duplicate too, if chaos says so). Changes with
        the same ``order_key`` (a message's statuses) are posted one after the other, each once
        the one before is answered or given up, so they arrive in the order they were due."""
        copies = 2 if self.rng.random() < self.chaos.duplicate_rate else 1
        change = Change(waba_id, field_name, value, entry_time, order_key)
        for copy in range(copies):
            heapq.heappush(self._due, _Due(at + copy * 0.01, next(self._order), change))
        self._wake.set()

    def status_delays(self) -> list[float]:
        """Offsets of sent, delivered and read from now; read before delivered when reordered."""
        low, high = self.chaos.delay_s
        sent = self.rng.uniform(low, high)
        delivered = sent + self.rng.uniform(low, high)
        read = delivered + self.rng.uniform(low, high)
        if self.rng.random() < self.chaos.reorder_rate:
            delivered, read = read + 0.001, delivered
        return [sent, delivered, read]

    def send_now(self, body: bytes) -> Delivery:
        """Deliver a body as it is (a customer's message in load mode, a redelivery)."""
        delivery = self._record(body)
        self._spawn(delivery)
        return delivery

    def redeliver(self, delivery_id: int) -> Delivery | None:
        kept = self.deliveries.get(delivery_id)
        return None if kept is None else self.send_now(kept.body)

    async def run(self) -> None:
        """Post what is due, for the sandbox's life."""
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession() as session:
            self._session = session
            try:
                while True:
                    wait_s = self._due[0].at - loop.time() if self._due else None
                    if wait_s is None or wait_s > 0:
                        self._wake.clear()
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._wake.wait(), wait_s)
                        continue
                    batch = [
                        heapq.heappop(self._due).change
                        for _ in range(min(self.chaos.batch_max, len(self._due)))
                        if self._due and self._due[0].at <= loop.time()
                    ]
                    keys = {change.order_key for change in batch if change.order_key}
                    self._spawn(self._record(encode_like_meta(envelope(batch))), keys)
            finally:
                for task in list(self._posting):
                    task.cancel()
                await asyncio.gather(*self._posting, return_exceptions=True)
                self._session = None

    def reset(self) -> None:
        """Forget everything due, being posted or delivered; the RNG back at its seed."""
        self._due.clear()
        for task in list(self._posting):
            task.cancel()
        self._last_post.clear()
        self.deliveries.clear()
        self.rng = random.Random(self.chaos.seed)  # noqa: S311 - chaos, not cryptography

    def pending(self) -> int:
        return len(self._due) + len(self._posting)

    def idle(self) -> bool:
        """Nothing waiting and nothing being posted."""
        return self.pending() == 0

    def _record(self, body: bytes) -> Delivery:
        delivery = Delivery(next(self._ids), body)
        self.deliveries[delivery.id] = delivery
        if len(self.deliveries) > MAX_KEPT_DELIVERIES:
            del self.deliveries[next(iter(self.deliveries))]
        return delivery

    def _spawn(self, delivery: Delivery, keys: set[str] | None = None) -> None:
        before = [self._last_post[key] for key in keys or () if key in self._last_post]
        task = asyncio.create_task(self._post(delivery, before))
        self._posting.add(task)
        task.add_done_callback(self._posting.discard)
        for key in keys or ():
            self._last_post[key] = task
            task.add_done_callback(functools.partial(self._forget, key))

    def _forget(self, key: str, done: asyncio.Task[None]) -> None:
        if self._last_post.get(key) is done:
            del self._last_post[key]

    async def _post(self, delivery: Delivery, before: list[asyncio.Task[None]]) -> None:
        await asyncio.gather(*before, return_exceptions=True)  # the same message's earlier ones
        loop = asyncio.get_running_loop()
        headers = {"Content-Type": "application/json", HEADER: sign(self._secret, delivery.body)}
        gap_s = self.retry.first_s
        for attempt in range(self.retry.max_attempts):
            if attempt:
                await asyncio.sleep(gap_s)
                gap_s *= self.retry.factor
            outcome: dict[str, Any] = {"at": loop.time()}
            try:
                assert self._session is not None
                async with self._session.post(
                    self.url,
                    data=delivery.body,
                    headers=headers,
                    timeout=aiohttp.ClientTimeout(total=self.retry.timeout_s),
                ) as response:
                    outcome["status"] = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                outcome["error"] = f"{type(exc).__name__}: {exc}"
            delivery.attempts.append(outcome)
            if self._on_attempt is not None:
                self._on_attempt(delivery)
            if outcome.get("status") == 200:
                delivery.delivered = True
                return
        log.warning(
            "webhook given up", extra={"delivery": delivery.id, "attempts": len(delivery.attempts)}
        )
