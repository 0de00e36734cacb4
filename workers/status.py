"""The status worker: ``wa.status`` -> the status history and each message's delivery state.

Each event is one status update of one outbound message (docs/cloudapi/statuses.md). A batch becomes
three lists (pure: ``rows_for``), written in one transaction by ``shared/storage/statuses.py``:
every update into the history, keyed ``<wamid>:<status>[:code]``; one folded state per message,
merged forward-only; the conversations seen. A status for a message wapipe never sent creates the
message's record.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import msgspec
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared import topology
from wapipe.shared.schemas.events import WebhookEvent, event_decoder
from wapipe.shared.schemas.webhook import Status
from wapipe.shared.storage import customers
from wapipe.shared.storage.schema import bigint
from wapipe.shared.storage.statements import Connection
from wapipe.shared.storage.statuses import ConversationRow, MessageState, StatusRow, store_statuses
from wapipe.workers.main import Resources, WorkerKind
from wapipe.workers.progress import RANK, Failure, Progress, advance
from wapipe.workers.retry import Reject
from wapipe.workers.runtime import Handler, Outcome
from wapipe.workers.storage import Transactions

QUEUE: Final = topology.STATUS_QUEUE

_status_decoder: Final = msgspec.json.Decoder(Status)


@dataclass(frozen=True)
class StatusEvent:
    event: WebhookEvent
    status: Status


def decode(body: bytes) -> StatusEvent:
    """One message of ``wa.status``; ``Reject`` if it is not a status event."""
    try:
        event = event_decoder.decode(body)
        if event.kind != "status":
            raise Reject(f"not a status event: kind {event.kind!r}")
        return StatusEvent(event, _status_decoder.decode(event.payload))
    except msgspec.DecodeError as exc:
        raise Reject(f"undecodable status event: {exc}") from None


def failure_of(status: Status) -> Failure | None:
    if status.status != "failed":
        return None
    if not status.errors:
        return Failure(code=0)
    error = status.errors[0]
    details = error.error_data.details if error.error_data else error.message
    return Failure(code=error.code, title=error.title, details=details)


def history_row(item: StatusEvent, stored_at: float) -> StatusRow:
    status, event = item.status, item.event
    failure = failure_of(status)
    conversation = status.conversation
    return StatusRow(
        key=event.key,
        wamid=status.id,
        status=status.status,
        timestamp=bigint(status.timestamp),
        recipient_id=status.recipient_id,
        phone_number_id=event.phone_number_id,
        error_code=failure.code if failure else None,
        error_title=failure.title if failure else None,
        error_details=failure.details if failure else None,
        conversation_id=conversation.id if conversation else None,
        pricing_category=status.pricing.category if status.pricing else None,
        received_at=event.received_at,
        stored_at=stored_at,
        payload=bytes(event.payload).decode(),
        pricing_billable=status.pricing.billable if status.pricing else None,
        pricing_model=status.pricing.pricing_model if status.pricing else None,
        pricing_type=status.pricing.type if status.pricing else None,
    )


def fold(items: Sequence[StatusEvent]) -> list[MessageState]:
    """One state per message: its statuses in this batch joined (workers/progress.py)."""
    by_message: dict[str, list[StatusEvent]] = {}
    for item in items:
        by_message.setdefault(item.status.id, []).append(item)
    return [_state(wamid, updates) for wamid, updates in by_message.items()]


def _state(wamid: str, updates: list[StatusEvent]) -> MessageState:
    progress: Progress | None = None
    for item in updates:
        progress = advance(progress, item.status.status, failure_of(item.status))
    assert progress is not None
    statuses = [item.status for item in updates]
    conversations = [status.conversation for status in statuses if status.conversation]
    pricings = [status.pricing for status in statuses if status.pricing]
    pricing = pricings[0] if pricings else None
    failure = progress.failure
    event = updates[0].event
    return MessageState(
        wamid=wamid,
        phone_number_id=event.phone_number_id,
        waba_id=event.waba_id,
        # A send to a BSUID has no recipient_id in its statuses: the BSUID names the customer.
        wa_id=_first(status.recipient_id or status.recipient_user_id for status in statuses),
        status_rank=RANK[progress.furthest] if progress.furthest else None,
        failure_code=failure.code if failure else None,
        failure_title=failure.title if failure else None,
        failure_details=failure.details if failure else None,
        last_status_at=max(
            filter(None, (bigint(status.timestamp) for status in statuses)), default=None
        ),
        conversation_id=_first(conversation.id for conversation in conversations),
        pricing_billable=pricing.billable if pricing else None,
        pricing_model=pricing.pricing_model if pricing else None,
        pricing_category=pricing.category if pricing else None,
        pricing_type=pricing.type if pricing else None,
        biz_opaque_callback_data=_first(status.biz_opaque_callback_data for status in statuses),
    )


def conversation_rows(items: Sequence[StatusEvent], seen_at: float) -> list[ConversationRow]:
    rows: dict[str, ConversationRow] = {}
    for item in items:
        conversation = item.status.conversation
        if conversation is None or not conversation.id or conversation.id in rows:
            continue
        rows[conversation.id] = ConversationRow(
            id=conversation.id,
            origin_type=conversation.origin.type if conversation.origin else None,
            expiration_timestamp=bigint(conversation.expiration_timestamp),
            wa_id=item.status.recipient_id,
            first_seen_at=seen_at,
        )
    return list(rows.values())


def sighting_of(item: StatusEvent) -> customers.Sighting:
    """The recipient's ids, seen together on a status."""
    status = item.status
    return customers.sighting(
        [status.recipient_id, status.recipient_user_id, status.recipient_parent_user_id]
    )


def _first(values: Iterable[str | None]) -> str | None:
    return next((value for value in values if value is not None), None)


class StatusHandler:
    """Stores a batch of status events in one transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        self._transactions = Transactions(engine)

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        return await self.store([decode(message.body) for message in batch])

    async def store(self, items: Sequence[StatusEvent]) -> Outcome:
        now = time.time()
        rows = [history_row(item, now) for item in items]

        async def write(connection: Connection) -> set[str]:
            new_keys = await store_statuses(
                connection, rows, fold(items), conversation_rows(items, now)
            )
            await customers.link(connection, map(sighting_of, items), now)
            return new_keys

        new_keys = await self._transactions.run(write)
        return Outcome(stored=len(new_keys), duplicates=len(rows) - len(new_keys))

    async def close(self) -> None:
        await self._transactions.close()


@asynccontextmanager
async def _status_handler(resources: Resources) -> AsyncIterator[Handler]:
    handler = StatusHandler(resources.engine)
    try:
        yield handler
    finally:
        await handler.close()


KIND: Final = WorkerKind("status", QUEUE, metrics_port=9101, handler=_status_handler)
