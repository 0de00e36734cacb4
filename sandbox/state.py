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

from sandbox.errors import unknown_object
from sandbox.limits import PairRate, Throughput
from sandbox.media import MediaStore
from sandbox.templates import TemplateSpec, template_spec

SERVICE_WINDOW_S: Final = 24 * 3600
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


@dataclass
class Customer:
    wa_id: str
    name: str
    last_inbound_at: float | None = None  # opens the 24-hour customer service window
    stopped_marketing: bool = False

    def in_window(self, now: float) -> bool:
        return self.last_inbound_at is not None and now - self.last_inbound_at < SERVICE_WINDOW_S


@dataclass
class SentMessage:
    wamid: str
    phone_number_id: str
    display_phone_number: str
    to: str
    type: str
    category: str  # pricing category: marketing, utility, authentication, service
    sent_at: float
    biz_opaque_callback_data: str | None = None
    template_id: str | None = None
    conversation_id: str | None = None
    opened_conversation: bool = False  # the first message of its conversation
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
    created: dict[str, Any]  # the creation payload
    status: str = "PENDING"
    rejected_reason: str | None = None  # once reviewed: "NONE" or the reason

    def spec(self) -> TemplateSpec:
        """What a send naming this template is checked against."""
        return template_spec(self.created, self.status, self.id)

    def node(self, fields: str | None = None) -> dict[str, Any]:
        """The template node (REFERENCE.md 10.2); ``fields`` as Meta reads it (``id`` always)."""
        node = {
            "name": self.created["name"],
            "parameter_format": self.created.get("parameter_format", "POSITIONAL"),
            "components": self.created.get("components", []),
            "language": self.created["language"],
            "status": self.status,
            "category": self.created["category"],
            "quality_score": {"score": "UNKNOWN"},
            "id": self.id,
        }
        if self.rejected_reason is not None:
            node["rejected_reason"] = self.rejected_reason
        if not fields:
            return node
        wanted = {f.strip() for f in fields.split(",")} | {"id"}
        return {k: v for k, v in node.items() if k in wanted}


def new_wamid() -> str:
    """An id shaped like Meta's: ``wamid.`` and base64 text (FACTS.md 1: opaque)."""
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
    # (phone number id, customer, category) -> (conversation id, expires at)
    conversations: dict[tuple[str, str, str], tuple[str, float]] = field(default_factory=dict)
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
