"""Split a webhook body into events: pure, no I/O.

One event per status, one per inbound message (with its contact and the number's metadata), one
per other change. Each gets a stable key (the AMQP ``message_id``) and a routing key:

    status.<status>      key: <wamid>:<status>[:<error code>]   (docs/cloudapi/webhooks.md)
    message.<type>       key: <wamid>
    account.<field>      key: <field>:<digest of the change>    (every field but ``messages``)
    account.errors       key: errors:<digest>                   (value-level errors in ``messages``)

Meta re-sends a body byte for byte, so a digest of the change's raw bytes is stable across retries.
Only what routing needs is decoded here (the views below); the objects themselves are forwarded
verbatim as ``msgspec.Raw``. Their full typed model is ``shared.schemas.webhook``.

Every event returned can be published: whatever becomes an AMQP property (the key as
``message_id``, the ids in headers) is checked here, so that an error in the publish means broker
trouble and nothing else. A signed body that cannot be carried (not UTF-8, nested too deep to
decode, an empty id, an id past AMQP's 255-byte short string) raises ``NotAWebhook`` and is
quarantined whole, never answered 503 (which Meta would retry for days).
"""

from __future__ import annotations

import functools
import hashlib
import re
from typing import Final, NamedTuple

import msgspec
from pamqp.common import FieldTable

from wapipe.shared.schemas.events import NULL, EventKind, Header, WebhookEvent
from wapipe.shared.topology import QUARANTINE_ROUTING_KEY

WABA_OBJECT: Final = "whatsapp_business_account"


# AMQP 0-9-1 short strings (message_id, routing key) hold 255 bytes at most; past that pamqp raises
# TypeError in the middle of the publish. Header values are long strings, but a content header
# must fit one frame (4096 bytes is the least a peer may negotiate): the ids in headers are held
# to the same 255, which no id of Meta's comes near (docs/cloudapi/basics.md: 15-16 digits; wamids
# ~60). Routing keys need no check: routing_token keeps their words to 64 safe ASCII characters.
SHORTSTR_MAX_BYTES: Final = 255
_ALWAYS_FITS: Final = SHORTSTR_MAX_BYTES // 4  # characters: UTF-8 takes 4 bytes at most
# entry[].time is unix seconds, stored as a BIGINT: past int64 it is nobody's time.
_INT64: Final = range(-(2**63), 2**63)
# msgspec decodes (and skips) nested arrays and objects recursively: past the interpreter's
# recursion limit it raises RecursionError, not DecodeError. No webhook of Meta's nests past ten.
TOO_DEEP: Final = "nested too deep to decode"
# Meta batches up to 1,000 updates in one body (the Cloud API's "Webhooks" page); 3 MB of the
# smallest statuses make 90,000 events, more than any confirm deadline covers: answered 503, such
# a body would come back for days. Past this many events a body is quarantined whole.
MAX_EVENTS_PER_BODY: Final = 2_000


class NotAWebhook(ValueError):
    """The body is not JSON, not a WhatsApp webhook envelope, or holds what AMQP cannot carry
    (see ``amqp_id``); ``str()`` says why."""


class Event(NamedTuple):
    """One AMQP message to publish on ``wa.events``."""

    kind: str  # an EventKind, or "quarantine"
    routing_key: str
    message_id: str
    headers: FieldTable
    body: bytes


# Routing views: the few fields the ingress reads. Unknown fields are ignored by msgspec.
class _Change(msgspec.Struct):
    field: str
    value: msgspec.Raw = NULL


class _Entry(msgspec.Struct):
    id: str | int
    time: int | None = None
    changes: list[_Change] = []


class _Envelope(msgspec.Struct):
    object: str
    entry: list[_Entry]


class _Metadata(msgspec.Struct):
    phone_number_id: str | None = None
    display_phone_number: str | None = None


class _OtherValue(msgspec.Struct):
    """The value of a field other than ``messages``: many (calls, user_preferences,
    smb_message_echoes...) carry the number's metadata like ``messages`` does."""

    metadata: _Metadata | None = None


class _MessagesValue(msgspec.Struct):
    metadata: _Metadata | None = None
    contacts: list[msgspec.Raw] = []
    messages: list[msgspec.Raw] = []
    statuses: list[msgspec.Raw] = []
    errors: list[msgspec.Raw] = []


class _ContactView(msgspec.Struct):
    wa_id: str | None = None
    user_id: str | None = None


class _ErrorView(msgspec.Struct):
    code: int | None = None


class _StatusView(msgspec.Struct):
    id: str
    status: str
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    errors: list[_ErrorView] = []


class _MessageView(msgspec.Struct):
    id: str
    type: str = "unknown"
    sender: str | None = msgspec.field(default=None, name="from")
    from_user_id: str | None = None


_envelope: Final = msgspec.json.Decoder(_Envelope)
_messages_value: Final = msgspec.json.Decoder(_MessagesValue)
_other_value: Final = msgspec.json.Decoder(_OtherValue)
_contact: Final = msgspec.json.Decoder(_ContactView)
_status: Final = msgspec.json.Decoder(_StatusView)
_message: Final = msgspec.json.Decoder(_MessageView)
_encode: Final = msgspec.json.Encoder().encode

_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_-]")


@functools.lru_cache(maxsize=1024)  # a handful of statuses, types and fields recur
def routing_token(text: str) -> str:
    """One word of a topic routing key: no dots or wildcards, never empty."""
    return _UNSAFE.sub("_", text)[:64] or "unknown"


def digest(*parts: bytes) -> str:
    return hashlib.sha256(b"\0".join(parts)).hexdigest()[:32]


def amqp_id(text: str, what: str) -> str:
    """``text``, an id that becomes an AMQP property: non-empty (an empty key would make every
    such event one, and aiormq swaps an empty message_id for a random one), and within a short
    string's 255 bytes. Raises ``NotAWebhook``."""
    if not text:
        raise NotAWebhook(f"{what} is empty")
    if len(text) > _ALWAYS_FITS:
        try:
            size = len(text.encode())
        except UnicodeEncodeError:  # a lone surrogate; msgspec decodes none, yet
            raise NotAWebhook(f"{what} is not UTF-8: {text[:40]!r}") from None
        if size > SHORTSTR_MAX_BYTES:
            raise NotAWebhook(
                f"{what} is {size} bytes, over AMQP's {SHORTSTR_MAX_BYTES}: {text[:40]!r}..."
            )
    return text


def split_body(body: bytes, received_at: float) -> list[Event]:
    """All events of one webhook body, in body order. Raises ``NotAWebhook``."""
    envelope = _decode_envelope(body)
    events: list[Event] = []
    try:
        for entry in envelope.entry:
            waba_id = amqp_id(str(entry.id), "entry id")
            if entry.time is not None and entry.time not in _INT64:
                raise NotAWebhook(f"entry time {str(entry.time)[:40]}... is past a 64-bit integer")
            for change in entry.changes:
                _within_limit(len(events) + 1)
                _split_change(waba_id, entry.time, change, received_at, events)
    except msgspec.DecodeError as exc:
        raise NotAWebhook(f"entry {exc}") from None
    except RecursionError:
        raise NotAWebhook(TOO_DEEP) from None
    if not events:
        # Nothing to hand on, yet Meta sent it: keep it for a person rather than drop it.
        raise NotAWebhook("the envelope holds no changes")
    return events


def _decode_envelope(body: bytes) -> _Envelope:
    if not body.isascii():  # Meta escapes most of what is not ASCII: no copy for those
        # JSON is UTF-8. msgspec raises UnicodeDecodeError (not DecodeError) on bad bytes in a
        # string it decodes, and copies them verbatim into a Raw, which no consumer could decode.
        try:
            body.decode()
        except UnicodeDecodeError as exc:
            raise NotAWebhook(f"not UTF-8: {exc}") from None
    try:
        envelope = _envelope.decode(body)
    except msgspec.DecodeError as exc:
        raise NotAWebhook(str(exc)) from None
    except RecursionError:
        raise NotAWebhook(TOO_DEEP) from None
    if envelope.object != WABA_OBJECT:
        raise NotAWebhook(f"object is {envelope.object[:40]!r}, not {WABA_OBJECT!r}")
    return envelope


def quarantine_event(body: bytes, reason: str, received_at: float) -> Event:
    """The whole body that could not be split (``reason``), kept for a person to look at."""
    headers: FieldTable = {
        Header.RECEIVED_AT: f"{received_at:.6f}",
        Header.QUARANTINE_REASON: reason[:200],
    }
    return Event("quarantine", QUARANTINE_ROUTING_KEY, "quarantine:" + digest(body), headers, body)


class _Context:
    """What every event of one change shares, worked out once per change."""

    __slots__ = (
        "display_phone_number",
        "entry_time",
        "field",
        "headers",
        "phone_number_id",
        "received_at",
        "waba_id",
    )

    def __init__(
        self,
        field: str,
        waba_id: str,
        entry_time: int | None,
        received_at: float,
        metadata: _Metadata | None,
    ) -> None:
        self.field, self.waba_id, self.entry_time = field, waba_id, entry_time
        self.received_at = received_at
        phone_number_id = metadata.phone_number_id if metadata else None
        # An empty id names no number: absent, as when Meta leaves it out.
        self.phone_number_id = (
            amqp_id(phone_number_id, "phone_number_id") if phone_number_id else None
        )
        self.display_phone_number = metadata.display_phone_number if metadata else None
        # One dict for all the change's events: they carry the same headers, never changed.
        self.headers: FieldTable = {
            Header.WABA_ID: waba_id,
            Header.RECEIVED_AT: f"{received_at:.6f}",
        }
        if self.phone_number_id:
            self.headers[Header.PHONE_NUMBER_ID] = self.phone_number_id

    def event(
        self,
        kind: EventKind,
        key: str,
        routing_key: str,
        payload: msgspec.Raw,
        contact: msgspec.Raw = NULL,
    ) -> Event:
        body = _encode(
            WebhookEvent(
                kind=kind,
                key=key,
                routing_key=routing_key,
                field=self.field,
                waba_id=self.waba_id,
                phone_number_id=self.phone_number_id,
                display_phone_number=self.display_phone_number,
                entry_time=self.entry_time,
                received_at=self.received_at,
                contact=contact,
                payload=payload,
            )
        )
        return Event(kind, routing_key, amqp_id(key, f"{kind} key"), self.headers, body)


def _split_change(
    waba_id: str, entry_time: int | None, change: _Change, received_at: float, into: list[Event]
) -> None:
    if change.field != "messages":
        context = _Context(change.field, waba_id, entry_time, received_at, _metadata(change.value))
        key = f"{change.field}:{digest(waba_id.encode(), str(entry_time).encode(), change.value)}"
        routing_key = "account." + routing_token(change.field)
        into.append(context.event("account", key, routing_key, change.value))
        return
    value = _messages_value.decode(change.value)
    _within_limit(len(into) + len(value.statuses) + len(value.messages))
    context = _Context(change.field, waba_id, entry_time, received_at, value.metadata)
    for raw in value.statuses:
        status = _status.decode(raw)
        amqp_id(status.id, "status id")  # empty, it would make one key of many wamids
        contact = _match(value.contacts, status.recipient_id, status.recipient_user_id)
        routing_key = "status." + routing_token(status.status)
        into.append(context.event("status", status_key(status), routing_key, raw, contact))
    for raw in value.messages:
        message = _message.decode(raw)
        contact = _match(value.contacts, message.sender, message.from_user_id)
        routing_key = "message." + routing_token(message.type)
        into.append(context.event("message", message.id, routing_key, raw, contact))
    if value.errors or not (value.statuses or value.messages):
        # System-wide errors, or a `messages` value carrying nothing we know: keep it whole.
        kind = "errors" if value.errors else "messages"
        key = f"{kind}:{digest(waba_id.encode(), change.value)}"
        into.append(context.event("account", key, "account." + kind, change.value))


def _within_limit(events: int) -> None:
    if events > MAX_EVENTS_PER_BODY:
        raise NotAWebhook(f"more than {MAX_EVENTS_PER_BODY} events in one body")


def _metadata(value: msgspec.Raw) -> _Metadata | None:
    """The number's metadata in a field's value, when the value is an object that has it."""
    if memoryview(value)[:1].tobytes() != b"{":  # a Raw holds the value alone, no blanks around
        return None  # a value of another shape: a field we know nothing of
    return _other_value.decode(value).metadata


def status_key(status: _StatusView) -> str:
    key = f"{status.id}:{status.status}"
    if status.errors and status.errors[0].code is not None:
        key += f":{status.errors[0].code}"
    return key


def _match(contacts: list[msgspec.Raw], wa_id: str | None, user_id: str | None) -> msgspec.Raw:
    """The contacts[] object of this user; the only one when ids do not tell."""
    if len(contacts) == 1:  # the usual body: one user
        return contacts[0]
    for raw in contacts:
        view = _contact.decode(raw)
        if (wa_id and view.wa_id == wa_id) or (user_id and view.user_id == user_id):
            return raw
    return NULL
