"""What every Struct of the webhook model shares, and the pieces several field values use."""

from __future__ import annotations

import msgspec


class WebhookStruct(msgspec.Struct, frozen=True, omit_defaults=True):
    """Shared config: immutable, defaults omitted on encode, unknown keys ignored (the default).

    Subclasses repeat ``frozen=True`` for mypy (msgspec issue #657) and ``kw_only=True`` because
    msgspec applies it only to the fields of the class that declares it.
    """


# --- Pieces shared by several values -----------------------------------------------------------


class Metadata(WebhookStruct, frozen=True, kw_only=True):
    display_phone_number: str
    phone_number_id: str  # route by this


class Profile(WebhookStruct, frozen=True, kw_only=True):
    name: str | None = None
    username: str | None = None


class Contact(WebhookStruct, frozen=True, kw_only=True):
    """The sender's profile
    (docs/cloudapi/inbound-messages.md): wa_id may be absent for username users."""

    profile: Profile | None = None
    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    identity_key_hash: str | None = None


class ErrorData(WebhookStruct, frozen=True, kw_only=True):
    details: str | None = None


class Error(WebhookStruct, frozen=True, kw_only=True):
    """One error (docs/cloudapi/statuses.md): build logic on ``code``, never on the title."""

    code: int
    title: str | None = None
    message: str | None = None
    error_data: ErrorData | None = None
    href: str | None = None
