"""Which Struct travels where: the published contracts, by routing key's first word or exchange.

Read by export.py (a JSON Schema file for each contract) and asyncapi.py (a message for each).
The sender's events (``outbound.py``) are described once that module exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from wapipe.shared import topology
from wapipe.shared.flows.protocol import FlowRequest
from wapipe.shared.schemas.changes import PhoneNumberChange, TemplateChange
from wapipe.shared.schemas.events import WebhookEvent
from wapipe.shared.schemas.jobs import Job
from wapipe.shared.storage.media import MediaRow

try:
    from wapipe.shared.schemas.outbound import OutboundEvent
except ImportError:  # pragma: no cover - before the sender's events exist
    OutboundEvent = None  # type: ignore[assignment,misc]

JSON_SCHEMA_DIALECT: Final = "https://json-schema.org/draft/2020-12/schema"


@dataclass(frozen=True)
class Contract:
    """A message on the broker: its name, the type it decodes as, and its AMQP ``message_id``."""

    name: str
    title: str
    message_id: str
    type: Any = None  # a Struct or a union of Structs; None: bytes wapipe does not model
    file: str | None = None  # its JSON Schema under schemas/
    content_type: str = "application/json"

    def schema_ref(self) -> dict[str, Any]:
        if self.type is None:
            return {"description": self.title}
        return {"$ref": f"#/components/schemas/{self.name}"}


@dataclass(frozen=True)
class Payload:
    """What one channel carries, and who publishes it."""

    contract: Contract
    description: str
    consumed_by_wapipe: bool = False  # an AsyncAPI ``publish`` operation; else ``subscribe``
    mandatory: bool = False


SEND_JOB: Final = Contract(
    "Job",
    "A send job: a message to send (kind send) or one to mark read (kind mark_read)",
    "the job's idempotency_key",
    Job,
    "send-job.schema.json",
)
WEBHOOK_EVENT: Final = Contract(
    "WebhookEvent",
    "Something the Cloud API told wapipe, one event of a webhook body",
    "the event's stable key (the wamid; wamid and status; ...)",
    WebhookEvent,
    "webhook-event.schema.json",
)
TEMPLATE_CHANGE: Final = Contract(
    "TemplateChange",
    "A message template's status, category or quality changed",
    "the change's key",
    TemplateChange,
    "template-change.schema.json",
)
PHONE_NUMBER_CHANGE: Final = Contract(
    "PhoneNumberChange",
    "A number's quality, messaging tier or standing changed",
    "the change's key",
    PhoneNumberChange,
    "phone-number-change.schema.json",
)
MEDIA_EVENT: Final = Contract(
    "MediaEvent",
    "An inbound media stored in the blob store, or given up",
    "the media id",
    MediaRow,
    "media-event.schema.json",
)
OUTBOUND_EVENT: Final = Contract(
    "OutboundEvent",
    "How a send job ended: accepted with its wamid, or failed with the reason",
    "<idempotency key>:<event>",
    OutboundEvent,
    "outbound-event.schema.json" if OutboundEvent is not None else None,
)
QUARANTINED: Final = Contract(
    "QuarantinedBody",
    "A signed webhook body that could not be parsed, verbatim (reason in x-wapipe-reason)",
    "a hash of the body",
)
DEAD_LETTER: Final = Contract(
    "DeadLetter",
    "A message its queue gave up on, unchanged, with the failure in its headers",
    "as it was",
)
UNROUTED: Final = Contract("Unrouted", "An event no binding of wa.events took", "as it was")
FLOW_REQUEST: Final = Contract(
    "FlowRequest",
    "A decrypted WhatsApp Flows endpoint request (INIT, data_exchange, BACK, error "
    "notifications); reply_to and correlation_id say where its FlowReply goes, expiration "
    "its deadline",
    "none (correlation_id pairs it with its reply)",
    FlowRequest,
    "flow-request.schema.json",
)

CONTRACTS: Final = (
    SEND_JOB,
    WEBHOOK_EVENT,
    TEMPLATE_CHANGE,
    PHONE_NUMBER_CHANGE,
    MEDIA_EVENT,
    OUTBOUND_EVENT,
    QUARANTINED,
    DEAD_LETTER,
    UNROUTED,
    FLOW_REQUEST,
)

_SEND: Final = Payload(
    SEND_JOB,
    "Send jobs, routing key send.<phone_number_id>: publish here for wapipe to send.",
    consumed_by_wapipe=True,
    mandatory=True,
)

# By a wa.events routing key's first word, or else by exchange name.
PAYLOADS: Final = {
    topology.OUTBOUND_EXCHANGE: _SEND,
    getattr(topology, "SEND_SHARDS_EXCHANGE", "wa.send.shards"): Payload(
        SEND_JOB,
        "Internal: send jobs spread over the sender's shard queues, every job of a number to "
        "one shard (the binding key is the queue's weight in the hash ring).",
        consumed_by_wapipe=True,
    ),
    "status": Payload(WEBHOOK_EVENT, "Delivery statuses: status.<sent|delivered|read|...>."),
    "message": Payload(WEBHOOK_EVENT, "Inbound messages: message.<type>."),
    "account": Payload(WEBHOOK_EVENT, "Every other webhook field: account.<field>."),
    "handled": Payload(
        WEBHOOK_EVENT, "An inbound message, after the business logic handled it: handled.<type>."
    ),
    "quarantine": Payload(QUARANTINED, "Signed webhook bodies that could not be parsed."),
    "media": Payload(MEDIA_EVENT, "Inbound media: media.stored, media.failed."),
    "template": Payload(TEMPLATE_CHANGE, "Templates: template.updated."),
    "phone_number": Payload(PHONE_NUMBER_CHANGE, "Phone numbers: phone_number.updated."),
    "outbound": Payload(OUTBOUND_EVENT, "Send jobs' ends: outbound.accepted, outbound.failed."),
    topology.DEAD_LETTER_EXCHANGE: Payload(
        DEAD_LETTER, "Dead letters, keyed by the name of the queue that gave them up."
    ),
    topology.UNROUTABLE_EXCHANGE: Payload(UNROUTED, "What no binding of wa.events matched."),
    topology.FLOWS_EXCHANGE: Payload(
        FLOW_REQUEST,
        "Internal: the Flows endpoint's requests for the flow handlers (wapipe worker flows), "
        "request/reply over direct reply-to.",
        consumed_by_wapipe=True,
    ),
    "unknown": Payload(UNROUTED, "Not described yet."),
}


def _describable(kind: Any) -> Any:
    """``kind``, or for a Struct with a ``msgspec.Raw`` default (which msgspec cannot render in a
    schema), its twin with that default as the JSON it stands for: the same fields, types and
    config, made from the Struct itself so it cannot drift."""
    if not (isinstance(kind, type) and issubclass(kind, msgspec.Struct)):
        return kind
    fields = msgspec.structs.fields(kind)
    if not any(isinstance(f.default, msgspec.Raw) for f in fields):
        return kind
    config = kind.__struct_config__
    return msgspec.defstruct(
        kind.__name__,
        [_field(f) for f in fields],
        module=kind.__module__,
        kw_only=True,
        frozen=config.frozen,
        omit_defaults=config.omit_defaults,
        forbid_unknown_fields=config.forbid_unknown_fields,
        rename={f.name: f.encode_name for f in fields},
    )


def _field(field: msgspec.structs.FieldInfo) -> tuple[str, Any] | tuple[str, Any, Any]:
    if isinstance(field.default, msgspec.Raw):
        return field.name, field.type, msgspec.json.decode(field.default)
    if field.default is not msgspec.NODEFAULT:
        return field.name, field.type, field.default
    if field.default_factory is not msgspec.NODEFAULT:
        return field.name, field.type, msgspec.field(default_factory=field.default_factory)
    return field.name, field.type


def component_schemas() -> dict[str, Any]:
    """Every contract's schema for ``components/schemas``, unions named as their contract."""
    modelled = [c for c in CONTRACTS if c.type is not None]
    tops, components = msgspec.json.schema_components(
        [_describable(c.type) for c in modelled], ref_template="#/components/schemas/{name}"
    )
    for contract, top in zip(modelled, tops, strict=True):
        if top.get("$ref", "").rsplit("/", 1)[-1] != contract.name:  # a union: name it
            components[contract.name] = top
    return _with_rules(dict(sorted(components.items())))


def json_schema(contract: Contract) -> dict[str, Any]:
    """The contract's standalone JSON Schema (what schemas/<file> holds)."""
    schema = msgspec.json.schema(_describable(contract.type))
    if "$defs" in schema:
        schema["$defs"] = _with_rules(schema["$defs"])
    return {"$schema": JSON_SCHEMA_DIALECT, "title": contract.title, **schema}


# What a Struct checks in __post_init__, which msgspec cannot render: said in the schema too.
_ONE_OF_TO_OR_RECIPIENT: Final = {
    "description": "A send job names its customer once: to (a phone number) or recipient (a "
    "business-scoped user id, BSUID), never both, never neither.",
    "oneOf": [
        {
            "required": ["to"],
            "properties": {"to": {"type": "string"}, "recipient": {"type": "null"}},
        },
        {
            "required": ["recipient"],
            "properties": {"recipient": {"type": "string"}, "to": {"type": "null"}},
        },
    ],
}
_RULES: Final = {"SendJob": _ONE_OF_TO_OR_RECIPIENT}


def _with_rules(definitions: dict[str, Any]) -> dict[str, Any]:
    return {name: {**d, **_RULES.get(name, {})} for name, d in definitions.items()}
