"""The account worker: ``wa.account`` -> account events kept, templates and numbers kept current.

Every account and template webhook change is stored whole (``account_events``). Those that change
a template (status, category, quality), a phone number (quality rating and messaging tier,
account standing) or a flow (its status, its latest endpoint alert: field ``flows``) also
update its current state, forward only in time (shared/storage/account.py). Template and number
changes are published as ``template.updated`` or ``phone_number.updated``
(shared/schemas/changes.py) once committed. Published for every event of a batch, new or
repeated, so a crash between commit and publish loses nothing; the event key is the
``message_id``, for followers to drop repeats.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Final

import msgspec
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared import topology
from wapipe.shared.amqp import EventPublisher, Outgoing
from wapipe.shared.schemas.changes import (
    PHONE_NUMBER_UPDATED,
    TEMPLATE_UPDATED,
    PhoneNumberChange,
    TemplateChange,
)
from wapipe.shared.schemas.events import WebhookEvent, event_decoder
from wapipe.shared.schemas.webhook import decode_value
from wapipe.shared.schemas.webhook_fields import (
    AccountUpdate,
    FlowsUpdate,
    PhoneNumberQualityUpdate,
    TemplateCategoryUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
)
from wapipe.shared.storage.account import (
    AccountEventRow,
    FlowRow,
    PhoneNumberRow,
    TemplateRow,
    store_account_events,
)
from wapipe.workers.main import Resources, WorkerKind
from wapipe.workers.retry import Reject
from wapipe.workers.runtime import Handler, Outcome
from wapipe.workers.storage import Transactions

QUEUE: Final = topology.ACCOUNT_QUEUE

_encoder: Final = msgspec.json.Encoder()

Change = TemplateChange | PhoneNumberChange


@dataclass(frozen=True)
class AccountEvent:
    event: WebhookEvent
    value: object  # the field's Struct (shared/schemas/webhook_fields.py), or a dict


def decode(body: bytes) -> AccountEvent:
    try:
        event = event_decoder.decode(body)
        if event.kind != "account":
            raise Reject(f"not an account event: kind {event.kind!r}")
        return AccountEvent(event, decode_value(event.field, event.payload))
    except msgspec.DecodeError as exc:
        raise Reject(f"undecodable account event: {exc}") from None


def change_of(item: AccountEvent) -> Change | None:
    """The template or number change a webhook value says, if any. Pure."""
    value, event = item.value, item.event
    at = float(event.entry_time) if event.entry_time is not None else event.received_at
    if isinstance(value, TemplateStatusUpdate | TemplateCategoryUpdate | TemplateQualityUpdate):
        return _template_change(value, event.waba_id, at)
    if isinstance(value, PhoneNumberQualityUpdate) and value.display_phone_number:
        return PhoneNumberChange(
            display_phone_number=value.display_phone_number,
            waba_id=event.waba_id,
            quality_event=value.event,
            messaging_tier=value.current_limit,
            at=at,
        )
    if isinstance(value, AccountUpdate) and value.phone_number:
        return PhoneNumberChange(
            display_phone_number=value.phone_number,
            waba_id=event.waba_id,
            account_event=value.event,
            at=at,
        )
    return None


def _template_change(
    value: TemplateStatusUpdate | TemplateCategoryUpdate | TemplateQualityUpdate,
    waba_id: str,
    at: float,
) -> TemplateChange:
    change = TemplateChange(
        template_id=str(value.message_template_id),
        waba_id=waba_id,
        name=value.message_template_name,
        language=value.message_template_language,
        at=at,
    )
    if isinstance(value, TemplateStatusUpdate):
        return msgspec.structs.replace(change, status=value.event, status_reason=value.reason)
    if isinstance(value, TemplateCategoryUpdate):
        category = value.new_category or value.correct_category
        return msgspec.structs.replace(change, category=category)
    return msgspec.structs.replace(change, quality=value.new_quality_score)


def template_row(change: TemplateChange) -> TemplateRow:
    def when(value: str | None) -> float | None:
        return change.at if value is not None else None

    return TemplateRow(
        template_id=change.template_id,
        waba_id=change.waba_id,
        name=change.name,
        language=change.language,
        status=change.status,
        status_reason=change.status_reason,
        status_at=when(change.status),
        category=change.category,
        category_at=when(change.category),
        quality=change.quality,
        quality_at=when(change.quality),
    )


def phone_number_row(change: PhoneNumberChange) -> PhoneNumberRow:
    quality_known = change.quality_event is not None or change.messaging_tier is not None
    return PhoneNumberRow(
        display_phone_number=change.display_phone_number,
        waba_id=change.waba_id,
        quality_event=change.quality_event,
        messaging_tier=change.messaging_tier,
        quality_at=change.at if quality_known else None,
        account_event=change.account_event,
        account_event_at=change.at if change.account_event is not None else None,
    )


def flow_row(item: AccountEvent) -> FlowRow | None:
    """A flow's status or latest endpoint alert, from a ``flows`` webhook value. Pure."""
    value, event = item.value, item.event
    if not isinstance(value, FlowsUpdate):
        return None
    at = float(event.entry_time) if event.entry_time is not None else event.received_at
    alert = value.new_status is None
    return FlowRow(
        flow_id=value.flow_id,
        waba_id=event.waba_id,
        status=value.new_status,
        status_at=None if alert else at,
        alert_event=value.event if alert else None,
        alert_state=value.alert_state if alert else None,
        alert_message=value.message if alert else None,
        alert_at=at if alert else None,
    )


def event_row(item: AccountEvent, stored_at: float) -> AccountEventRow:
    event = item.event
    return AccountEventRow(
        key=event.key,
        field=event.field,
        waba_id=event.waba_id,
        phone_number_id=event.phone_number_id,
        entry_time=event.entry_time,
        received_at=event.received_at,
        stored_at=stored_at,
        payload=bytes(event.payload).decode(),
    )


class AccountHandler:
    def __init__(self, engine: AsyncEngine, publisher: EventPublisher) -> None:
        self._transactions = Transactions(engine)
        self._publisher = publisher

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        items = [decode(message.body) for message in batch]
        changes = [(item.event.key, change_of(item)) for item in items]
        templates = [template_row(c) for _, c in changes if isinstance(c, TemplateChange)]
        numbers = [phone_number_row(c) for _, c in changes if isinstance(c, PhoneNumberChange)]
        flows = [row for item in items if (row := flow_row(item)) is not None]
        now = time.time()
        new = await self._transactions.run(
            partial(
                store_account_events,
                events=[event_row(item, now) for item in items],
                templates=templates,
                phone_numbers=numbers,
                flows=flows,
            )
        )
        await self._publisher.publish(
            [
                Outgoing(
                    topology.EVENTS_EXCHANGE,
                    TEMPLATE_UPDATED
                    if isinstance(change, TemplateChange)
                    else PHONE_NUMBER_UPDATED,
                    key,
                    _encoder.encode(change),
                    mandatory=False,
                )
                for key, change in changes
                if change is not None
            ]
        )
        return Outcome(stored=len(new), duplicates=len(items) - len(new))

    async def close(self) -> None:
        await self._transactions.close()


@asynccontextmanager
async def _account_handler(resources: Resources) -> AsyncIterator[Handler]:
    handler = AccountHandler(resources.engine, resources.events)
    try:
        yield handler
    finally:
        await handler.close()


KIND: Final = WorkerKind("account", QUEUE, metrics_port=9103, handler=_account_handler)
