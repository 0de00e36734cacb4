"""The webhook POST body Meta sends, as permissive msgspec Structs.

The envelope (``Envelope`` -> ``Entry`` -> ``Change``) keeps each ``value`` as ``msgspec.Raw``
because its shape depends on ``field``; ``decode_value(field, raw)`` turns it into the Struct
named in ``FIELD_VALUE_TYPES``, or a plain dict for a field we do not know yet. Here: the
envelope, statuses and inbound messages; the other fields' values are in webhook_fields.py,
what they share in webhook_base.py.

Permissive on purpose: unknown keys are ignored, nearly every key is optional, and message and
status kinds are plain strings, because Meta adds fields, message types and statuses without
notice (docs/cloudapi/webhooks.md). Shapes follow
docs/cloudapi/webhooks.md, inbound-messages.md, statuses.md.
"""

from __future__ import annotations

from typing import Any, Final

import msgspec

from wapipe.shared.schemas.webhook_base import (
    Contact,
    Error,
    Metadata,
    WebhookStruct,
)
from wapipe.shared.schemas.webhook_fields import (
    AccountAlerts,
    AccountReviewUpdate,
    AccountUpdate,
    BusinessCapabilityUpdate,
    FlowsUpdate,
    PhoneNumberNameUpdate,
    PhoneNumberQualityUpdate,
    Security,
    TemplateCategoryUpdate,
    TemplateComponentsUpdate,
    TemplateQualityUpdate,
    TemplateStatusUpdate,
    UserPreferencesValue,
)

# --- Envelope (docs/cloudapi/webhooks.md) ---------------------------------------------------------


class Change(WebhookStruct, frozen=True, kw_only=True):
    field: str
    value: msgspec.Raw  # decoded later by decode_value(field, value)


class Entry(WebhookStruct, frozen=True, kw_only=True):
    id: str  # WABA id
    time: int | None = None  # unix seconds; template and account fields only
    changes: tuple[Change, ...] = ()


class Envelope(WebhookStruct, frozen=True, kw_only=True):
    object: str  # "whatsapp_business_account"
    entry: tuple[Entry, ...]


# --- Status (docs/cloudapi/statuses.md) -----------------------------------------------------------


class ConversationOrigin(WebhookStruct, frozen=True, kw_only=True):
    type: str | None = None


class Conversation(WebhookStruct, frozen=True, kw_only=True):
    id: str | None = None
    expiration_timestamp: str | None = None
    origin: ConversationOrigin | None = None


class Pricing(WebhookStruct, frozen=True, kw_only=True):
    billable: bool | None = None
    pricing_model: str | None = None  # "CBP" before 2025-07-01, "PMP" after
    category: str | None = None
    type: str | None = None


class Status(WebhookStruct, frozen=True, kw_only=True):
    id: str  # wamid of our message
    status: str  # a plain str: unknown statuses must still route (docs/cloudapi/statuses.md)
    timestamp: str
    recipient_id: str | None = None  # omitted when we sent to a BSUID
    recipient_user_id: str | None = None
    recipient_parent_user_id: str | None = None
    recipient_type: str | None = None
    recipient_participant_id: str | None = None
    recipient_identity_key_hash: str | None = None
    biz_opaque_callback_data: str | None = None
    conversation: Conversation | None = None
    pricing: Pricing | None = None
    errors: tuple[Error, ...] = ()


# --- Inbound message (docs/cloudapi/inbound-messages.md) ------------------------------------------


class ReferredProduct(WebhookStruct, frozen=True, kw_only=True):
    catalog_id: str | None = None
    product_retailer_id: str | None = None


class Context(WebhookStruct, frozen=True, kw_only=True):
    from_: str | None = msgspec.field(default=None, name="from")
    id: str | None = None  # the quoted (or tapped) wamid
    forwarded: bool | None = None
    frequently_forwarded: bool | None = None
    referred_product: ReferredProduct | None = None


class WelcomeMessage(WebhookStruct, frozen=True, kw_only=True):
    text: str | None = None


class Referral(WebhookStruct, frozen=True, kw_only=True):
    source_url: str | None = None
    source_id: str | None = None
    source_type: str | None = None  # "ad" or "post"
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    image_url: str | None = None
    video_url: str | None = None
    thumbnail_url: str | None = None
    ctwa_clid: str | None = None
    welcome_message: WelcomeMessage | None = None


class Identity(WebhookStruct, frozen=True, kw_only=True):
    acknowledged: bool | None = None
    created_timestamp: int | str | None = None
    hash: str | None = None


class Text(WebhookStruct, frozen=True, kw_only=True):
    body: str


class Media(WebhookStruct, frozen=True, kw_only=True):
    """image, video, audio, document and sticker share one shape
    (docs/cloudapi/inbound-messages.md)."""

    id: str
    mime_type: str | None = None
    sha256: str | None = None  # base64 here, hex in the media look-up answer
    caption: str | None = None
    filename: str | None = None  # document
    voice: bool | None = None  # audio: a recorded voice note
    animated: bool | None = None  # sticker
    url: str | None = None  # ready download URL, rolled out from 2025-11


class Location(WebhookStruct, frozen=True, kw_only=True):
    latitude: float
    longitude: float
    name: str | None = None
    address: str | None = None
    url: str | None = None


class ContactName(WebhookStruct, frozen=True, kw_only=True):
    formatted_name: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


class ContactPhone(WebhookStruct, frozen=True, kw_only=True):
    phone: str | None = None
    type: str | None = None
    wa_id: str | None = None


class ContactEmail(WebhookStruct, frozen=True, kw_only=True):
    email: str | None = None
    type: str | None = None


class ContactAddress(WebhookStruct, frozen=True, kw_only=True):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactOrg(WebhookStruct, frozen=True, kw_only=True):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class ContactUrl(WebhookStruct, frozen=True, kw_only=True):
    url: str | None = None
    type: str | None = None


class SharedContact(WebhookStruct, frozen=True, kw_only=True):
    """A contact card the user shared (message type ``contacts``), not the sender's profile."""

    name: ContactName | None = None
    phones: tuple[ContactPhone, ...] = ()
    emails: tuple[ContactEmail, ...] = ()
    addresses: tuple[ContactAddress, ...] = ()
    org: ContactOrg | None = None
    urls: tuple[ContactUrl, ...] = ()
    birthday: str | None = None


class ButtonReply(WebhookStruct, frozen=True, kw_only=True):
    id: str
    title: str | None = None


class ListReply(WebhookStruct, frozen=True, kw_only=True):
    id: str
    title: str | None = None
    description: str | None = None


class NfmReply(WebhookStruct, frozen=True, kw_only=True):
    name: str | None = None  # "flow" or "address_message"
    body: str | None = None
    response_json: str | None = None  # a JSON document inside a string


class CallPermissionReply(WebhookStruct, frozen=True, kw_only=True):
    response: str | None = None  # "accept" or "reject"
    expiration_timestamp: int | str | None = None
    response_source: str | None = None


class Interactive(WebhookStruct, frozen=True, kw_only=True):
    type: str  # names the one reply object present
    button_reply: ButtonReply | None = None
    list_reply: ListReply | None = None
    nfm_reply: NfmReply | None = None
    call_permission_reply: CallPermissionReply | None = None


class Button(WebhookStruct, frozen=True, kw_only=True):
    """A quick-reply button tapped on a template."""

    payload: str | None = None
    text: str | None = None


class Reaction(WebhookStruct, frozen=True, kw_only=True):
    message_id: str
    emoji: str | None = None  # absent or "" when the reaction is removed


class ProductItem(WebhookStruct, frozen=True, kw_only=True):
    product_retailer_id: str
    quantity: int
    item_price: float
    currency: str


class Order(WebhookStruct, frozen=True, kw_only=True):
    catalog_id: str | None = None
    text: str | None = None
    product_items: tuple[ProductItem, ...] = ()


class System(WebhookStruct, frozen=True, kw_only=True):
    body: str | None = None
    type: str | None = None  # user_changed_number, customer_identity_changed, ...
    new_wa_id: str | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    previous_user_id: str | None = None
    previous_parent_user_id: str | None = None
    customer: str | None = None


class Edit(WebhookStruct, frozen=True, kw_only=True):
    original_message_id: str
    message: MessageContent | None = None


class Revoke(WebhookStruct, frozen=True, kw_only=True):
    original_message_id: str


class Unsupported(WebhookStruct, frozen=True, kw_only=True):
    type: str | None = None  # e.g. "poll"


class MessageContent(WebhookStruct, frozen=True, kw_only=True):
    """What a message says: its ``type`` and the payload keyed by that type.

    ``type`` is a plain str with one optional attribute per known type, not a tagged union: a
    tagged union would reject the types Meta adds without notice (STYLE.md, msgspec).
    """

    type: str
    context: Context | None = None
    text: Text | None = None
    image: Media | None = None
    video: Media | None = None
    audio: Media | None = None
    document: Media | None = None
    sticker: Media | None = None
    location: Location | None = None
    contacts: tuple[SharedContact, ...] = ()
    interactive: Interactive | None = None
    button: Button | None = None
    reaction: Reaction | None = None
    order: Order | None = None
    system: System | None = None
    edit: Edit | None = None
    revoke: Revoke | None = None
    unsupported: Unsupported | None = None


class Message(MessageContent, frozen=True, kw_only=True):
    """One inbound message. ``from`` is absent for username users, who have ``from_user_id``."""

    id: str  # wamid: the dedup key
    timestamp: str  # unix seconds, as a string
    from_: str | None = msgspec.field(default=None, name="from")
    from_user_id: str | None = None
    from_parent_user_id: str | None = None
    group_id: str | None = None
    referral: Referral | None = None
    errors: tuple[Error, ...] = ()
    identity: Identity | None = None


class MessagesValue(WebhookStruct, frozen=True, kw_only=True):
    """``value`` of field ``messages``; value-level errors are system-wide failures."""

    messaging_product: str
    metadata: Metadata
    contacts: tuple[Contact, ...] = ()
    messages: tuple[Message, ...] = ()
    statuses: tuple[Status, ...] = ()
    errors: tuple[Error, ...] = ()


# --- Decoding ----------------------------------------------------------------------------------

FIELD_VALUE_TYPES: Final[dict[str, type[msgspec.Struct]]] = {
    "messages": MessagesValue,
    "message_template_status_update": TemplateStatusUpdate,
    "message_template_quality_update": TemplateQualityUpdate,
    "message_template_components_update": TemplateComponentsUpdate,
    "template_category_update": TemplateCategoryUpdate,
    "phone_number_quality_update": PhoneNumberQualityUpdate,
    "phone_number_name_update": PhoneNumberNameUpdate,
    "account_update": AccountUpdate,
    "account_alerts": AccountAlerts,
    "account_review_update": AccountReviewUpdate,
    "business_capability_update": BusinessCapabilityUpdate,
    "security": Security,
    "user_preferences": UserPreferencesValue,
    "flows": FlowsUpdate,
}

_ENVELOPE_DECODER: Final = msgspec.json.Decoder(Envelope)
_VALUE_DECODERS: Final[dict[str, msgspec.json.Decoder[Any]]] = {
    field: msgspec.json.Decoder(value_type) for field, value_type in FIELD_VALUE_TYPES.items()
}
# A field we do not know yet (calls, smb_*, ...) is kept whole and routed generically.
_UNKNOWN_VALUE_DECODER: Final = msgspec.json.Decoder(dict[str, Any])


def decode_envelope(body: bytes) -> Envelope:
    """Decode a POST body; raises ``msgspec.DecodeError`` (or its ``ValidationError``)."""
    return _ENVELOPE_DECODER.decode(body)


def decode_value(field: str, raw: msgspec.Raw | bytes) -> object:
    """Decode one change's ``value``: the Struct for a known ``field``, else a plain dict."""
    decoder = _VALUE_DECODERS.get(field, _UNKNOWN_VALUE_DECODER)
    result: object = decoder.decode(raw)
    return result
