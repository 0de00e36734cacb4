"""The body of ``POST /{version}/{phone-number-id}/messages``, checked as the Cloud API checks it.

Pure: a JSON value in, a ``SendRequest`` or ``ReadRequest`` out, or a ``GraphError`` raised. Shapes
and limits from docs/cloudapi/sending.md (common body, per-type payloads, mark as read) and
limits.md (sizes); interactive kinds are checked in interactive.py, templates in templates.py. Codes
from docs/cloudapi/errors.md: a wrong JSON type is 100, a missing part 131008, a bad value 131009,
an unknown type 131051. Unknown keys are ignored, as Meta ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from wapipe.sandbox.errors import (
    invalid_parameter,
    invalid_value,
    missing_parameter,
    unsupported_type,
)
from wapipe.sandbox.interactive import check_interactive
from wapipe.sandbox.json_checks import (
    list_at,
    media_source,
    object_at,
    optional_bool,
    optional_str,
    required_object,
    string_at,
)
from wapipe.sandbox.templates import (
    FindTemplate,
    TemplateSpec,
    approved_template,
    check_template_payload,
)

TEXT_BODY_MAX: Final = 4096
CAPTION_MAX: Final = 1024
CALLBACK_DATA_MAX: Final = 512
PHONE_DIGITS: Final = (5, 15)


@dataclass(frozen=True)
class SendRequest:
    to: str  # as given: the success answer echoes it as contacts[].input
    wa_id: str
    type: str
    payload: Any  # the object named after the type (a list for "contacts")
    context_message_id: str | None
    biz_opaque_callback_data: str | None
    template: TemplateSpec | None  # set for type "template"


@dataclass(frozen=True)
class ReadRequest:
    message_id: str
    typing_indicator: bool


Validator: TypeAlias = Callable[[Any], None]

# --- the request ---------------------------------------------------------------------------


def parse_messages_request(body: Any, find_template: FindTemplate) -> SendRequest | ReadRequest:
    request = object_at(body, "the request body")
    product = request.get("messaging_product")
    if product is None:
        raise missing_parameter("messaging_product is required")
    if product != "whatsapp":
        raise invalid_parameter('messaging_product must be "whatsapp"')
    if "status" in request:
        return _read_request(request)
    return _send_request(request, find_template)


def _read_request(request: dict[str, Any]) -> ReadRequest:
    if request["status"] != "read":
        raise invalid_parameter('status must be "read"')
    message_id = string_at(request, "message_id", "message_id")
    indicator = request.get("typing_indicator")
    if indicator is not None and object_at(indicator, "typing_indicator").get("type") != "text":
        raise invalid_value('typing_indicator.type must be "text"')
    return ReadRequest(message_id=message_id, typing_indicator=indicator is not None)


def _send_request(request: dict[str, Any], find_template: FindTemplate) -> SendRequest:
    to, wa_id = _recipient(request)
    kind = optional_str(request, "type", "type")
    kind = "text" if kind is None else kind
    validate = _VALIDATORS.get(kind)
    if validate is None:
        raise unsupported_type(f"type {kind!r} is not a message type that can be sent")
    payload = request.get(kind)
    if payload is None:
        raise missing_parameter(f"{kind} is required for a message of type {kind}")
    validate(payload)
    context_message_id = _context_message_id(request, kind)
    callback_data = optional_str(
        request, "biz_opaque_callback_data", "biz_opaque_callback_data", CALLBACK_DATA_MAX
    )
    return SendRequest(
        to=to,
        wa_id=wa_id,
        type=kind,
        payload=payload,
        context_message_id=context_message_id,
        biz_opaque_callback_data=callback_data,
        template=approved_template(payload, find_template) if kind == "template" else None,
    )


def _recipient(request: dict[str, Any]) -> tuple[str, str]:
    """(``to`` as given, the id to deliver to); ``to`` wins over a BSUID ``recipient``."""
    to = optional_str(request, "to", "to")
    if to is None:
        recipient = optional_str(request, "recipient", "recipient")
        if not recipient:
            raise missing_parameter("to is required")
        if not re.fullmatch(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}", recipient):
            raise invalid_value(f"recipient ({recipient}) is not a business-scoped user ID")
        return recipient, recipient
    recipient_type = optional_str(request, "recipient_type", "recipient_type") or "individual"
    if recipient_type not in ("individual", "group"):
        raise invalid_value('recipient_type must be "individual" or "group"')
    if recipient_type == "group":
        return to, string_at(request, "to", "to")
    return to, _wa_id(to)


def _wa_id(to: str) -> str:
    digits = re.sub(r"[+\s()-]", "", to)
    if not re.fullmatch(r"[0-9]+", digits):
        raise invalid_value(f"to ({to}) is not a phone number")
    low, high = PHONE_DIGITS
    if not low <= len(digits) <= high:
        raise invalid_value(f"to ({to}) must have {low} to {high} digits")
    return digits


def _context_message_id(request: dict[str, Any], kind: str) -> str | None:
    context = request.get("context")
    if context is None:
        return None
    if kind == "reaction":
        raise invalid_parameter("context is not allowed with a reaction")
    message_id = object_at(context, "context").get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise invalid_parameter("context.message_id must be a string")
    return message_id


# --- per-type payloads (docs/cloudapi/sending.md) -------------------------------------------------


def _text(payload: Any) -> None:
    text = object_at(payload, "text")
    body = string_at(text, "body", "text.body")
    if len(body) > TEXT_BODY_MAX:
        # 100, not 131009: the kit's sample answer (responses/err_100_invalid_parameter.json).
        raise invalid_parameter(f"text.body is longer than {TEXT_BODY_MAX} characters")
    optional_bool(text, "preview_url", "text.preview_url")


_MEDIA_EXTRAS: Final = (
    ("caption", ("image", "video", "document")),
    ("filename", ("document",)),
    ("voice", ("audio",)),
)


def _media(kind: str) -> Validator:
    def validate(payload: Any) -> None:
        media = object_at(payload, kind)
        media_source(media, kind)
        for key, kinds in _MEDIA_EXTRAS:
            if key in media and kind not in kinds:
                raise invalid_parameter(f"{kind}.{key} is not allowed for {kind}")
        optional_str(media, "caption", f"{kind}.caption", CAPTION_MAX)
        optional_str(media, "filename", f"{kind}.filename")
        optional_bool(media, "voice", f"{kind}.voice")

    return validate


def _location(payload: Any) -> None:
    location = object_at(payload, "location")
    for key, bound in (("latitude", 90), ("longitude", 180)):
        value = location.get(key)
        if value is None:
            raise missing_parameter(f"location.{key} is required")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_parameter(f"location.{key} must be a number")
        if not -bound <= value <= bound:
            raise invalid_value(f"location.{key} must be between -{bound} and {bound}")
    optional_str(location, "name", "location.name")
    optional_str(location, "address", "location.address")


def _contacts(payload: Any) -> None:
    contacts = list_at(payload, "contacts")
    if not contacts:
        raise missing_parameter("contacts must hold at least one contact")
    for i, value in enumerate(contacts):
        path = f"contacts[{i}]"
        name = required_object(object_at(value, path), "name", f"{path}.name")
        string_at(name, "formatted_name", f"{path}.name.formatted_name")


def _reaction(payload: Any) -> None:
    reaction = object_at(payload, "reaction")
    string_at(reaction, "message_id", "reaction.message_id")
    if reaction.get("emoji") is None:
        raise missing_parameter("reaction.emoji is required")
    optional_str(reaction, "emoji", "reaction.emoji")  # "" removes the reaction


_VALIDATORS: Final[dict[str, Validator]] = {
    "text": _text,
    "image": _media("image"),
    "audio": _media("audio"),
    "video": _media("video"),
    "document": _media("document"),
    "sticker": _media("sticker"),
    "location": _location,
    "contacts": _contacts,
    "interactive": check_interactive,
    "template": check_template_payload,
    "reaction": _reaction,
}
