"""What happens in the sandbox, as a stream of events for the console (``/_sandbox/events``).

    inbound    a customer sent a message       {wa_id, wamid, phone_number_id, message}
    outbound   the business's send accepted    {wa_id, wamid, phone_number_id, message}
    webhook    a webhook attempt and answer    {id, delivered, attempts, body}
    refused    a Graph call answered an error  {code, title, method, path}
    fault      a fault met a Graph request     {path, fault}
    control    the clock, chaos or faults changed, or a reset
    flow       a customer filled a flow      {wa_id, message_id, flow_id, flow_name, screens,
                                              steps, closed_with, error, health}
                                              (sandbox/flow_customer.py)

Each event gets a sequence number; the last ``BACKLOG`` are kept, so a console that connects (or
reconnects with ``Last-Event-ID``) catches up before it goes live. Publishing never waits: a
console too slow to keep up is dropped, and catches up when its browser reconnects.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from typing import Any, Final

BACKLOG: Final = 2000
QUEUE_SIZE: Final = 1000


class Feed:
    def __init__(self) -> None:
        self._seq = itertools.count(1)
        self.backlog: deque[dict[str, Any]] = deque(maxlen=BACKLOG)
        self._listeners: set[asyncio.Queue[dict[str, Any] | None]] = set()

    def publish(self, kind: str, **fields: Any) -> None:
        event = {"seq": next(self._seq), "kind": kind, "at": time.time(), **fields}
        self.backlog.append(event)
        for queue in list(self._listeners):
            try:
                queue.put_nowait(event)
            except asyncio.QueueFull:
                self._listeners.discard(queue)
                _end(queue)

    def last_seq(self) -> int:
        return int(self.backlog[-1]["seq"]) if self.backlog else 0

    def since(self, seq: int) -> list[dict[str, Any]]:
        """The kept events after ``seq``."""
        return [event for event in self.backlog if event["seq"] > seq]

    def listen(self) -> asyncio.Queue[dict[str, Any] | None]:
        """A queue of every event from now on; ``None`` when the feed closes (or drops it)."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE_SIZE)
        self._listeners.add(queue)
        return queue

    def forget(self, queue: asyncio.Queue[dict[str, Any] | None]) -> None:
        self._listeners.discard(queue)

    def close(self) -> None:
        """End every listener's stream (the sandbox is stopping)."""
        for queue in self._listeners:
            _end(queue)
        self._listeners.clear()


def _end(queue: asyncio.Queue[dict[str, Any] | None]) -> None:
    """Make room and put the end mark: what was not read yet is dropped."""
    while not queue.empty():
        queue.get_nowait()
    queue.put_nowait(None)
