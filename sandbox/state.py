"""The sandbox's world: businesses, customers, messages, and what was asked of it. In memory.

Everything that depends on time reads ``Clock.now()``, which tests may move forward
(``/_sandbox/clock``) to cross the 24-hour window or a media URL's lifetime without waiting.
"""

from __future__ import annotations

import base64
import dataclasses
import itertools
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from wapipe.sandbox.errors import unknown_object
from wapipe.sandbox.limits import PairRate, Throughput
from wapipe.sandbox.media import MediaStore
from wapipe.sandbox.templates import TemplateSpec, template_spec
from wapipe.shared.cloudapi.nodes import QualityScore, TemplateNode

SERVICE_WINDOW_S: Final = 24 * 3600
# A username customer's phone number still shows in webhooks to a business number that messaged
# or called it, or heard from it, within this long (docs/cloudapi/usernames.md).
PHONE_SHARED_S: Final = 30 * 24 * 3600
REQUEST_LOG_SIZE: Final = 10_000


@dataclass
class Clock:
    """Wall-clock time plus an offset; it never goes back. Frozen, it stands still until advanced
    (so a test can put 81 sends in one second however slow the machine); thawed, it goes on
    from where it stood."""

    offset_s: float = 0.0
    frozen_at: float | None = None

    def now(self) -> float:
        if self.frozen_at is not None:
            return self.frozen_at + self.offset_s
        return time.time() + self.offset_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self.offset_s += seconds

    def freeze(self, frozen: bool) -> None:
        if frozen and self.frozen_at is None:
            self.frozen_at = time.time()
        elif not frozen and self.frozen_at is not None:
            self.offset_s += self.frozen_at - time.time()
            self.frozen_at = None


@dataclass
class Business:
    waba_id: str
    phone_number_id: str
    display_phone_number: str
    verified_name: str = "Sandbox Business"
    quality_rating: str = "GREEN"
    messaging_limit_tier: str = "TIER_2K"
    throughput_level: str = "STANDARD"
    business_public_key: str = ""  # the Flows endpoint's, set through whatsapp_business_encryption
    profile: dict[str, Any] = field(
        default_factory=lambda: {
            "about": "A sandbox business",
            "address": "",
            "description": "",
            "email": "",
            "websites": [],
            "vertical": "OTHER",
            "profile_picture_url": "",
        }
    )


def new_bsuid(country: str = "US") -> str:
    """A business-scoped user id shaped like Meta's: country code, a dot, digits."""
    return f"{country}.{secrets.randbelow(9 * 10**19) + 10**19}"


@dataclass
class Customer:
    wa_id: str  # every customer has a phone number; a username may hide it (phone_shared)
    name: str
    last_inbound_at: float | None = None  # opens the 24-hour customer service window
    stopped_marketing: bool = False
    user_id: str = field(default_factory=new_bsuid)  # the BSUID (one business portfolio here)
    parent_user_id: str | None = None
    username: str | None = None
    in_contact_book: bool = False  # Meta's contact book keeps the phone number shown
    # business phone number id -> the last exchange by phone number (a send to it, or a message
    # from it while it was shown)
    phone_contact_at: dict[str, float] = field(default_factory=dict)
    blocked_by: dict[str, float] = field(default_factory=dict)  # business number id -> when
    referral_at: float | None = None  # last message from an ad (sandbox/pricing.py)
    entry_point_id: str = ""  # the free entry point window open or last open, and its end
    entry_point_until: float = 0.0

    def in_window(self, now: float) -> bool:
        return self.last_inbound_at is not None and now - self.last_inbound_at < SERVICE_WINDOW_S

    def phone_shared(self, phone_number_id: str, now: float) -> bool:
        """Whether webhooks to this business number show the phone number: always without a
        username; with one, only while Meta's contact book holds it or within 30 days of an
        exchange by phone number with this business number (docs/cloudapi/usernames.md)."""
        if self.username is None or self.in_contact_book:
            return True
        last = self.phone_contact_at.get(phone_number_id)
        return last is not None and now - last < PHONE_SHARED_S

    def ids(self, phone_number_id: str, now: float) -> dict[str, str]:
        """The ids a webhook names this customer by: ``user_id`` always, ``wa_id`` if shared."""
        ids = {"user_id": self.user_id}
        if self.parent_user_id is not None:
            ids["parent_user_id"] = self.parent_user_id
        if self.phone_shared(phone_number_id, now):
            ids = {"wa_id": self.wa_id, **ids}
        return ids

    def contact(self, phone_number_id: str, now: float) -> dict[str, Any]:
        """The ``contacts[]`` object of a webhook about this customer."""
        profile = {"name": self.name, **({"username": self.username} if self.username else {})}
        return {"profile": profile, **self.ids(phone_number_id, now)}


@dataclass
class SentMessage:
    wamid: str
    phone_number_id: str
    display_phone_number: str
    to: str
    type: str
    category: str  # pricing category (sandbox/pricing.py)
    sent_at: float
    biz_opaque_callback_data: str | None = None
    template_id: str | None = None
    conversation_id: str | None = None  # its free entry point window's, if any
    opened_conversation: bool = False  # the first message of its entry point window
    billable: bool = True
    pricing_type: str = "regular"
    to_bsuid: bool = False  # sent to a BSUID (``recipient``): statuses name no phone number
    failed_code: int | None = None  # refused after it was accepted: the customer never got it
    # an interactive flow message's action parameters: what its customer opens
    # (sandbox/flow_customer.py)
    flow: dict[str, Any] | None = None
    statuses: list[tuple[str, float]] = field(default_factory=list)  # (status, when), reported


@dataclass
class RequestRecord:
    at: float
    method: str
    path: str
    status: int
    code: int | None = None  # the Cloud API error code answered, if any


@dataclass
class Template:
    id: str
    waba_id: str
    created: dict[str, Any]  # the creation payload, with edits applied
    status: str = "PENDING"
    rejected_reason: str | None = None  # once reviewed: "NONE" or the reason
    quality: str = "UNKNOWN"  # GREEN, YELLOW, RED, UNKNOWN (until sends are rated)
    quality_at: int = field(default_factory=lambda: int(time.time()))
    previous_category: str | None = None
    edits_at: list[float] = field(default_factory=list)  # edits while approved (rules: 24h, 30d)

    def spec(self) -> TemplateSpec:
        """What a send naming this template is checked against."""
        return template_spec(self.created, self.status, self.id)

    def node(self, fields: str | None = None) -> dict[str, Any]:
        """The template node as Meta answers it (docs/cloudapi/templates.md;
        shared/cloudapi/nodes.py, the one shape the client reads too); ``fields`` as Meta reads
        it (``id`` always)."""
        node = TemplateNode(
            id=self.id,
            name=self.created["name"],
            language=self.created["language"],
            status=self.status,
            category=self.created["category"],
            parameter_format=self.created.get("parameter_format", "POSITIONAL"),
            components=self.created.get("components", []),
            quality_score=QualityScore(self.quality, self.quality_at),
            rejected_reason=self.rejected_reason,
            previous_category=self.previous_category,
            message_send_ttl_seconds=self.created.get("message_send_ttl_seconds"),
            cta_url_link_tracking_opted_out=self.created.get("cta_url_link_tracking_opted_out"),
        )
        # Meta leaves out what a template does not have (no previous category, no TTL).
        answer = {k: v for k, v in msgspec.to_builtins(node).items() if v is not None}
        if not fields:
            return answer
        wanted = {f.strip() for f in fields.split(",")} | {"id"}
        return {k: v for k, v in answer.items() if k in wanted}


def new_wamid() -> str:
    """An id shaped like Meta's: ``wamid.`` and base64 text (docs/cloudapi/basics.md: opaque)."""
    return (
        "wamid." + base64.b64encode(b"\x15\x02\x00\x11\x18\x12" + secrets.token_bytes(18)).decode()
    )


@dataclass
class World:
    clock: Clock
    throughput: Throughput
    pair_rate: PairRate
    businesses: dict[str, Business] = field(default_factory=dict)  # by phone number id
    customers: dict[str, Customer] = field(default_factory=dict)  # by wa_id
    sent: dict[str, SentMessage] = field(default_factory=dict)  # by wamid
    media: MediaStore = field(default_factory=MediaStore)
    template_records: dict[str, Template] = field(default_factory=dict)  # by template id
    management_calls: dict[str, deque[float]] = field(default_factory=dict)  # by WABA, last hour
    requests: deque[RequestRecord] = field(default_factory=lambda: deque(maxlen=REQUEST_LOG_SIZE))
    answered: Counter[tuple[str, int]] = field(default_factory=Counter)  # (path kind, code)
    flows: dict[str, Any] = field(default_factory=dict)  # by flow id (sandbox/flows.py)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def new_id(self, prefix: int) -> str:
        """A numeric Graph id (WABA, phone number, media, template), unique in this world."""
        return str(prefix * 10**12 + next(self._ids))

    def add_business(self, display_phone_number: str) -> Business:
        business = Business(self.new_id(109876), self.new_id(118765), display_phone_number)
        self.businesses[business.phone_number_id] = business
        return business

    def add_customer(self, wa_id: str, name: str) -> Customer:
        customer = self.customers.setdefault(wa_id, Customer(wa_id, name))
        customer.name = name
        return customer

    def customer(self, wa_id_or_bsuid: str) -> Customer | None:
        """The customer with this phone number (digits) or BSUID (current or parent)."""
        found = self.customers.get(wa_id_or_bsuid)
        if found is not None:
            return found
        return next(
            (c for c in self.customers.values() if wa_id_or_bsuid in (c.user_id, c.parent_user_id)),
            None,
        )

    def replace_with(self, fresh: World) -> None:
        """Become ``fresh`` (a reset), keeping this object, which the app holds."""
        for item in dataclasses.fields(self):
            setattr(self, item.name, getattr(fresh, item.name))

    def business(self, phone_number_id: str) -> Business:
        """The business of this phone number; raises Graph's unknown-object error."""
        business = self.businesses.get(phone_number_id)
        if business is None:
            raise unknown_object(phone_number_id)
        return business

    def waba(self, waba_id: str) -> Business:
        """The business of this WABA; raises Graph's unknown-object error."""
        business = self.business_by_waba(waba_id)
        if business is None:
            raise unknown_object(waba_id)
        return business

    def business_by_waba(self, waba_id: str) -> Business | None:
        return next((b for b in self.businesses.values() if b.waba_id == waba_id), None)
