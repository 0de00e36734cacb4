"""What the account worker publishes on ``wa.events``: a template's or a number's change. Versioned.

    template.updated       a message template's status, category or quality changed
    phone_number.updated   a number's quality rating, messaging tier or account standing changed

Each carries only the attributes its webhook said (the others are null), with ``at``, the time
of the change (the webhook entry's time, else when the ingress received it). The webhook itself
stays on ``wa.events`` as ``account.<field>`` for whoever wants it whole.
"""

from __future__ import annotations

from typing import Final

import msgspec

CHANGE_VERSION: Final = 1
TEMPLATE_UPDATED: Final = "template.updated"
PHONE_NUMBER_UPDATED: Final = "phone_number.updated"


class TemplateChange(msgspec.Struct, frozen=True, kw_only=True):
    v: int = CHANGE_VERSION
    template_id: str
    waba_id: str
    name: str | None = None
    language: str | None = None
    status: str | None = None  # APPROVED, REJECTED, PAUSED, DISABLED, PENDING_DELETION, ...
    status_reason: str | None = None
    category: str | None = None  # UTILITY, MARKETING, AUTHENTICATION
    quality: str | None = None  # GREEN, YELLOW, RED, UNKNOWN
    at: float


class PhoneNumberChange(msgspec.Struct, frozen=True, kw_only=True):
    v: int = CHANGE_VERSION
    display_phone_number: str
    waba_id: str
    quality_event: str | None = None  # FLAGGED, UNFLAGGED, THROUGHPUT_UPGRADE, ...
    messaging_tier: str | None = None  # e.g. TIER_10K
    account_event: str | None = None  # from account_update, e.g. ACCOUNT_VIOLATION
    at: float
