"""The message worker: ``wa.message`` -> stored messages and contacts -> the business logic.

For each batch: every message is stored with its contact, context, referral and errors (one
transaction; a repeat stores nothing). Then each message not yet handled goes to the user's
handlers, in order: async functions named in ``WAPIPE_MESSAGE_HANDLERS`` ("module:function"),
each called with a ``MessageContext``. What they reply, and a read receipt when
``WAPIPE_MARK_READ`` is on, is published as send jobs on ``wa.outbound`` for the sender; then a
``handled.<type>`` event (the original event, unchanged) on ``wa.events``; then the message is
marked handled.

The answers of a whole batch are published together and their messages marked handled in one
transaction once every confirm is in (a round trip per batch, not per message). The mark is a
transaction of its own, committed before the ack: joined to the next batch's store it would save
a commit and a thread hop a batch, but leave a handled message unmarked, to be handed on again if
it came back, until that next batch came (results/cost.md, 2026-12-05). A handler that
raises fails its message: retried, then dead-lettered, like any failure (workers/runtime.py);
nothing it replied is published, while what the handlers before it answered is, and marked.
Handling is at least once: a crash after the jobs went out and before the mark runs the handlers
again, and their replies carry the same idempotency keys (``reply:<wamid>:<n>``), so the sender
sends them once. So can two replicas that take two copies of one message (Meta repeats itself)
at the same instant: handlers must tolerate a repeat (``handled.*`` followers drop it by its
``message_id``).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Final

import msgspec
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared import topology
from wapipe.shared.amqp import EventPublisher, Outgoing
from wapipe.shared.schemas.events import NULL, WebhookEvent, event_decoder
from wapipe.shared.schemas.jobs import (
    MarkReadJob,
    SendJob,
    encode_job,
    is_bsuid,
    job_encoder,
    routing_key,
    text_message,
)
from wapipe.shared.schemas.jobs import Message as OutgoingMessage
from wapipe.shared.schemas.webhook import Message
from wapipe.shared.schemas.webhook_base import Contact
from wapipe.shared.storage import customers
from wapipe.shared.storage.messages import (
    ContactRow,
    InboundRow,
    mark_handled,
    store_inbound,
    unhandled,
)
from wapipe.shared.storage.schema import bigint
from wapipe.shared.storage.statements import Connection
from wapipe.workers.handlers import load_async_functions
from wapipe.workers.main import Resources, WorkerKind
from wapipe.workers.retry import Reject
from wapipe.workers.runtime import Handler, Outcome
from wapipe.workers.storage import Transactions

QUEUE: Final = topology.MESSAGE_QUEUE

_message_decoder: Final = msgspec.json.Decoder(Message)
_contact_decoder: Final = msgspec.json.Decoder(Contact)
_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True)
class MessageEvent:
    event: WebhookEvent
    message: Message
    contact: Contact | None


def decode(body: bytes) -> MessageEvent:
    """One message of ``wa.message``; ``Reject`` if it is not a message event."""
    try:
        event = event_decoder.decode(body)
        if event.kind != "message":
            raise Reject(f"not a message event: kind {event.kind!r}")
        contact = None if event.contact == NULL else _contact_decoder.decode(event.contact)
        return MessageEvent(event, _message_decoder.decode(event.payload), contact)
    except msgspec.DecodeError as exc:
        raise Reject(f"undecodable message event: {exc}") from None


def sender_of(item: MessageEvent) -> str | None:
    """Who sent it: the wa_id, or the user id of a username user who hides the number."""
    message, contact = item.message, item.contact
    return message.from_ or (contact.wa_id if contact else None) or message.from_user_id


def sighting_of(item: MessageEvent) -> customers.Sighting:
    """The ids of the person behind a message, seen together: the sender's (``from``, the
    contact's) and, in a system message, those before and after a change."""
    message, contact, system = item.message, item.contact, item.message.system
    ids = [message.from_, message.from_user_id, message.from_parent_user_id]
    if contact is not None:
        ids += [contact.wa_id, contact.user_id, contact.parent_user_id]
    if system is not None:
        ids += [system.wa_id, system.new_wa_id, system.user_id, system.previous_user_id]
        ids += [system.parent_user_id, system.previous_parent_user_id]
    return customers.sighting(ids)


def _json(value: object) -> str | None:
    if value is None or value == ():
        return None
    return _encoder.encode(value).decode()


def inbound_row(item: MessageEvent) -> InboundRow:
    message, event = item.message, item.event
    context = message.context
    return InboundRow(
        wamid=message.id,
        phone_number_id=event.phone_number_id,
        waba_id=event.waba_id,
        wa_id=sender_of(item),
        type=message.type,
        timestamp=bigint(message.timestamp),
        received_at=event.received_at,
        payload=bytes(event.payload).decode(),
        context_wamid=context.id if context else None,
        context_from=context.from_ if context else None,
        forwarded=context.forwarded if context else None,
        frequently_forwarded=context.frequently_forwarded if context else None,
        referral=_json(message.referral),
        errors=_json(message.errors),
    )


def contact_rows(items: Sequence[MessageEvent]) -> list[ContactRow]:
    """One row per contact in the batch; the latest message's profile name wins."""
    rows: dict[str, ContactRow] = {}
    for item in items:
        contact_id = sender_of(item)
        if contact_id is None:
            continue
        contact = item.contact
        seen_at = item.event.received_at
        known = rows.get(contact_id)
        name = contact.profile.name if contact and contact.profile else None
        rows[contact_id] = ContactRow(
            contact_id=contact_id,
            # The contacts[] object says which id is which; "from" alone may be either.
            wa_id=contact.wa_id if contact else item.message.from_,
            user_id=(contact.user_id if contact else None) or item.message.from_user_id,
            profile_name=name or (known.profile_name if known else None),
            first_seen_at=min(seen_at, known.first_seen_at) if known else seen_at,
            last_seen_at=max(seen_at, known.last_seen_at) if known else seen_at,
        )
    return list(rows.values())


@dataclass
class MessageContext:
    """What a handler gets: the message, who sent it, and a way to answer."""

    event: WebhookEvent
    message: Message
    contact: Contact | None
    jobs: list[SendJob | MarkReadJob] = field(default_factory=list)

    @property
    def wamid(self) -> str:
        return self.message.id

    @property
    def sender(self) -> str | None:
        return sender_of(MessageEvent(self.event, self.message, self.contact))

    def reply(self, message: OutgoingMessage, *, quote: bool = False, **job: Any) -> SendJob:
        """Answer the sender, e.g. ``context.reply(ImageMessage(image=Image(link=url)))``
        (the kinds are in ``shared/schemas/jobs.py``); ``quote`` shows it as a reply; ``job``
        sets more of the SendJob (``callback_data``, ``metadata``, ``expires_at``)."""
        if self.event.phone_number_id is None or self.sender is None:
            raise ValueError("this message names no number to answer from or to")
        bsuid = is_bsuid(self.sender)  # a username customer whose number is not shown
        sent = SendJob(
            idempotency_key=f"reply:{self.wamid}:{len(self.jobs)}",
            phone_number_id=self.event.phone_number_id,
            to=None if bsuid else self.sender,
            recipient=self.sender if bsuid else None,
            message=message,
            reply_to=self.wamid if quote else None,
            **job,
        )
        encode_job(sent)  # the limits (text length, ...) fail here, in the handler that broke them
        self.jobs.append(sent)
        return sent

    def reply_text(self, text: str, *, quote: bool = False, preview_url: bool = False) -> SendJob:
        return self.reply(text_message(text, preview_url=preview_url), quote=quote)


UserHandler = Callable[[MessageContext], Awaitable[None]]


def load_handlers(names: Sequence[str]) -> list[UserHandler]:
    """The functions named "module:function" (workers/handlers.py)."""
    handlers: list[UserHandler] = load_async_functions(names, "WAPIPE_MESSAGE_HANDLERS")
    return handlers


async def _store(
    items: Sequence[MessageEvent], connection: Connection
) -> tuple[set[str], set[str]]:
    """Store a batch with its contacts and customers; the wamids stored for the first time, and
    those not yet handled (the new ones and any repeat whose handling never finished)."""
    new = await store_inbound(
        connection, [inbound_row(item) for item in items], contact_rows(items)
    )
    await customers.link(connection, map(sighting_of, items), time.time())
    # A row stored just now is unhandled: only the repeats need looking up.
    repeats = {item.message.id for item in items} - new
    return new, new | (await unhandled(connection, repeats) if repeats else set())


class MessageHandler:
    """Stores a batch in one transaction, then hands each new message to the business logic."""

    def __init__(
        self,
        engine: AsyncEngine,
        publisher: EventPublisher,
        handlers: Sequence[UserHandler] = (),
        mark_read: bool = False,
    ) -> None:
        self._transactions = Transactions(engine)
        self._publisher = publisher
        self._handlers = handlers
        self._mark_read = mark_read

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        items = [decode(message.body) for message in batch]
        new, waiting = await self._transactions.run(partial(_store, items))
        handed: list[str] = []  # in order, each once (Meta repeats itself, even in one batch)
        outgoing: list[Outgoing] = []
        try:
            for item, message in zip(items, batch, strict=True):
                if item.message.id in waiting:
                    outgoing += await self._hand_on(item, message.body)
                    handed.append(item.message.id)
                    waiting.discard(item.message.id)
        except Exception:
            # What the handlers finished before the failure goes out and is marked, so that
            # the batch retried message by message does not hand those on again.
            await self._settle(outgoing, handed)
            raise
        await self._settle(outgoing, handed)
        return Outcome(stored=len(new), duplicates=len(items) - len(new))

    async def close(self) -> None:
        await self._transactions.close()

    async def _settle(self, outgoing: Sequence[Outgoing], handed: Sequence[str]) -> None:
        """Publish what the handlers made, all at once; once every confirm is in, mark their
        messages handled (one transaction for the batch)."""
        if not handed:
            return
        await self._publisher.publish(outgoing)
        await self._transactions.run(partial(mark_handled, wamids=handed, at=time.time()))

    async def _hand_on(self, item: MessageEvent, body: bytes) -> list[Outgoing]:
        """The handlers' answers to one message, and its ``handled.*`` event, to publish."""
        context = MessageContext(item.event, item.message, item.contact)
        for handler in self._handlers:
            await handler(context)
        jobs: list[SendJob | MarkReadJob] = list(context.jobs)
        if self._mark_read and item.event.phone_number_id:
            jobs.append(
                MarkReadJob(
                    idempotency_key=f"read:{item.message.id}",
                    phone_number_id=item.event.phone_number_id,
                    message_id=item.message.id,
                )
            )
        outgoing = [
            Outgoing(
                topology.OUTBOUND_EXCHANGE,
                routing_key(job.phone_number_id),
                job.idempotency_key,
                job_encoder.encode(job),
            )
            for job in jobs
        ]
        outgoing.append(
            Outgoing(
                topology.EVENTS_EXCHANGE,
                f"handled.{item.message.type}",
                item.message.id,
                body,
                mandatory=False,
            )
        )
        return outgoing


@asynccontextmanager
async def _message_handler(resources: Resources) -> AsyncIterator[Handler]:
    settings = resources.settings
    handler = MessageHandler(
        resources.engine,
        resources.events,
        load_handlers(settings.message_handlers),
        settings.mark_read,
    )
    try:
        yield handler
    finally:
        await handler.close()


KIND: Final = WorkerKind("message", QUEUE, metrics_port=9102, handler=_message_handler)
