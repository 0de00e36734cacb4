"""Simulated customers: the inbound messages Meta would deliver from them. Pure. (The files they
send come from media_files.py.)

- ``inbound_message(kind, ...)``: one ``value.messages[]`` object shaped as Meta shapes it
  (docs/cloudapi/inbound-messages.md); per-kind fields come from ``spec``, with defaults for what is
  absent.
- ``inbound_value(...)``: the ``value`` of a ``messages`` change around one such message.

Shapes follow the sample bodies in tests/data/cloudapi/webhooks/message_*.json key for key.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from wapipe.sandbox.media_files import DEFAULT_DOCUMENT_FILENAME, MEDIA_KINDS

UNSUPPORTED_CODE: Final = 131051  # docs/cloudapi/inbound-messages.md, type "unsupported"


# --- Inbound messages (docs/cloudapi/inbound-messages.md) -----------------------------------------


@dataclass(frozen=True)
class MediaRef:
    """An uploaded file as a message refers to it; ``sha256`` is the raw 32-byte digest."""

    id: str
    mime_type: str
    sha256: bytes
    filename: str | None = None  # documents: the name the customer's file had


@dataclass(frozen=True)
class _Inbound:
    """What a per-kind builder gets: the kind, who sends, the caller's spec, the media if any."""

    kind: str
    sender: str
    spec: Mapping[str, Any]
    media: MediaRef | None


_Fields = dict[str, Any]  # keys to add to the message next to from, id, timestamp and type


def _present(spec: Mapping[str, Any], *keys: str) -> _Fields:
    return {key: spec[key] for key in keys if spec.get(key) is not None}


def _text(inbound: _Inbound) -> _Fields:
    return {"text": {"body": inbound.spec.get("body", "Hello!")}}


# What each media kind adds to {id, mime_type, sha256}
# (docs/cloudapi/inbound-messages.md): a caption the customer
# may write, or a flag Meta always sends.
_CAPTIONED: Final = frozenset({"image", "video", "document"})
_FLAGS: Final = {"audio": "voice", "sticker": "animated"}


def _document_filename(inbound: _Inbound) -> str:
    from_media = inbound.media.filename if inbound.media else None
    return str(inbound.spec.get("filename") or from_media or DEFAULT_DOCUMENT_FILENAME)


def _media(inbound: _Inbound) -> _Fields:
    kind, spec = inbound.kind, inbound.spec
    if inbound.media is None:
        raise ValueError(f"a {kind} message needs media (a MediaRef)")
    media: dict[str, Any] = {
        "id": inbound.media.id,
        "mime_type": inbound.media.mime_type,
        # base64 in webhooks, hex in GET /{media-id} (docs/cloudapi/inbound-messages.md)
        "sha256": base64.b64encode(inbound.media.sha256).decode(),
    } | _present(spec, *(("caption", "url") if kind in _CAPTIONED else ("url",)))
    if flag := _FLAGS.get(kind):
        media[flag] = bool(spec.get(flag, False))
    if kind == "document":
        media["filename"] = _document_filename(inbound)
    return {kind: media}


def _location(inbound: _Inbound) -> _Fields:
    spec = inbound.spec
    where = {
        "latitude": spec.get("latitude", -23.561414),
        "longitude": spec.get("longitude", -46.655881),
    }
    return {"location": where | _present(spec, "name", "address", "url")}


_DEFAULT_CARD: Final[Mapping[str, Any]] = {
    "name": {"formatted_name": "Dana Ortiz", "first_name": "Dana", "last_name": "Ortiz"},
    "phones": [{"phone": "+1 631 555 0142", "type": "CELL", "wa_id": "16315550142"}],
    "emails": [{"email": "dana@example.com", "type": "WORK"}],
    "org": {"company": "Ortiz Tiles", "title": "Owner"},
}


def _contacts(inbound: _Inbound) -> _Fields:
    return {"contacts": copy.deepcopy(list(inbound.spec.get("contacts", [_DEFAULT_CARD])))}


def _button_reply(spec: Mapping[str, Any]) -> _Fields:
    return {"id": spec.get("id", "yes"), "title": spec.get("title", "Yes")}


def _list_reply(spec: Mapping[str, Any]) -> _Fields:
    reply = {"id": spec.get("id", "row-1"), "title": spec.get("title", "First")}
    return reply | _present(spec, "description")


def _nfm_reply(spec: Mapping[str, Any]) -> _Fields:
    response = spec.get("response_json", {"flow_token": "unused"})
    if not isinstance(response, str):  # Meta sends the flow's answer as a JSON string
        response = json.dumps(response, separators=(",", ":"))
    return {
        "name": spec.get("name", "flow"),
        "body": spec.get("body", "Sent"),
        "response_json": response,
    }


_REPLIES: Final[dict[str, Callable[[Mapping[str, Any]], _Fields]]] = {
    "button_reply": _button_reply,
    "list_reply": _list_reply,
    "nfm_reply": _nfm_reply,
}


def _interactive(inbound: _Inbound) -> _Fields:
    reply = inbound.spec.get("reply", "button_reply")
    if reply not in _REPLIES:
        raise ValueError(f"no interactive reply {reply!r}; known: {', '.join(_REPLIES)}")
    return {"interactive": {"type": reply, reply: _REPLIES[reply](inbound.spec)}}


def _button(inbound: _Inbound) -> _Fields:
    text = inbound.spec.get("text", "Yes")
    # the payload falls back to the button text when none was set at send time
    # (docs/cloudapi/inbound-messages.md)
    return {"button": {"payload": inbound.spec.get("payload", text), "text": text}}


def _reaction(inbound: _Inbound) -> _Fields:
    # A removed reaction has emoji absent or "" (both seen,
    # docs/cloudapi/inbound-messages.md): keep what is asked.
    message_id = inbound.spec.get("message_id", "wamid.sandbox-unknown")
    return {"reaction": {"message_id": message_id} | _present(inbound.spec, "emoji")}


_DEFAULT_ITEM: Final[Mapping[str, Any]] = {
    "product_retailer_id": "sku-1",
    "quantity": 1,
    "item_price": 9.99,
    "currency": "USD",
}


def _order(inbound: _Inbound) -> _Fields:
    spec = inbound.spec
    items = copy.deepcopy(list(spec.get("product_items", [_DEFAULT_ITEM])))
    order = {"catalog_id": spec.get("catalog_id", "catalog-1")} | _present(spec, "text")
    return {"order": order | {"product_items": items}}


_SYSTEM_OPTIONAL: Final = (
    "new_wa_id",
    "wa_id",
    "user_id",
    "parent_user_id",
    "previous_user_id",
    "previous_parent_user_id",
    "customer",
)


def _system(inbound: _Inbound) -> _Fields:
    spec = inbound.spec
    new_number = spec.get("new_wa_id") or spec.get("wa_id") or "a new number"
    body = spec.get("body", f"User A changed from {inbound.sender} to {new_number}")
    kind = spec.get("type", "user_changed_number")
    return {"system": {"body": body} | _present(spec, *_SYSTEM_OPTIONAL) | {"type": kind}}


def _unsupported(inbound: _Inbound) -> _Fields:
    spec = inbound.spec
    error = {
        "code": UNSUPPORTED_CODE,
        # build on the code, never the title (docs/cloudapi/statuses.md)
        "title": "Message type unknown",
        "message": spec.get("message", "Message type unknown"),
        "error_data": {"details": spec.get("details", "Message type is currently not supported.")},
    }
    shown_as = {"unsupported": {"type": spec["type"]}} if spec.get("type") else {}
    return {"errors": [error]} | shown_as


def _request_welcome(inbound: _Inbound) -> _Fields:
    return {}  # the type alone says it: the user opened the chat for the first time


_BUILDERS: Final[dict[str, Callable[[_Inbound], _Fields]]] = {
    "text": _text,
    **dict.fromkeys(MEDIA_KINDS, _media),
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "system": _system,
    "unsupported": _unsupported,
    "request_welcome": _request_welcome,
}

INBOUND_KINDS: Final[tuple[str, ...]] = tuple(_BUILDERS)


def inbound_message(
    kind: str,
    *,
    sender: str,
    wamid: str,
    timestamp: int,
    spec: Mapping[str, Any],
    media: MediaRef | None = None,
) -> dict[str, Any]:
    """One ``value.messages[]`` object; any kind's ``spec`` may add ``context`` and ``referral``."""
    build = _BUILDERS.get(kind)
    if build is None:
        raise ValueError(f"no inbound message kind {kind!r}; known: {', '.join(INBOUND_KINDS)}")
    # timestamp is a string of unix seconds in webhooks (docs/cloudapi/inbound-messages.md)
    message = {"from": sender, "id": wamid, "timestamp": str(timestamp), "type": kind}
    message |= build(_Inbound(kind=kind, sender=sender, spec=spec, media=media))
    return message | copy.deepcopy(_present(spec, "context", "referral"))


def inbound_value(
    *,
    display_phone_number: str,
    phone_number_id: str,
    customer_name: str,
    wa_id: str,
    message: dict[str, Any],
    contact: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``value`` of a ``messages`` change carrying ``message`` from customer ``wa_id``;
    ``contact``, when given, is the ``contacts[]`` object as is (a username customer's)."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    # system webhooks carry no contacts (docs/cloudapi/inbound-messages.md)
    if message.get("type") != "system":
        value["contacts"] = [contact or {"profile": {"name": customer_name}, "wa_id": wa_id}]
    value["messages"] = [message]
    return value
