"""The management answers of the Cloud API as Structs (docs/cloudapi/templates.md, business.md):
template nodes and their pages, phone numbers, the business profile. Permissive: a field Meta
adds is ignored, one it leaves out takes its default."""

from __future__ import annotations

from typing import Any, Final

import msgspec


class Cursors(msgspec.Struct, frozen=True):
    before: str | None = None
    after: str | None = None


class Paging(msgspec.Struct, frozen=True):
    cursors: Cursors = Cursors()
    next: str | None = None  # present only when there is a next page


class QualityScore(msgspec.Struct, frozen=True, omit_defaults=True):
    score: str | None = None  # GREEN, YELLOW, RED, UNKNOWN
    date: int | None = None  # unix seconds: when the score was set


class TemplateNode(msgspec.Struct, frozen=True, kw_only=True):
    """A template as ``GET /{template-id}`` and the list answer it (Meta's "Message template"
    reference; docs/cloudapi/template-rules.md): the client reads it, the sandbox answers it."""

    id: str
    name: str
    language: str
    status: str
    category: str
    parameter_format: str = "POSITIONAL"
    components: list[dict[str, Any]] = []
    quality_score: QualityScore | None = None
    rejected_reason: str | None = None
    previous_category: str | None = None  # after Meta moved it to another category
    correct_category: str | None = None  # Meta's category, announced before it moves it
    sub_category: str | None = None
    message_send_ttl_seconds: int | None = None
    library_template_name: str | None = None
    cta_url_link_tracking_opted_out: bool | None = None

    @property
    def quality(self) -> str | None:
        return self.quality_score.score if self.quality_score is not None else None


TEMPLATE_FIELDS: Final = ",".join(TemplateNode.__struct_fields__)


class TemplateSummary(msgspec.Struct, frozen=True):
    total_count: int | None = None
    message_template_count: int | None = None
    message_template_limit: int | None = None


class TemplatePage(msgspec.Struct, frozen=True):
    data: list[TemplateNode]
    paging: Paging = Paging()
    summary: TemplateSummary | None = None


class Throughput(msgspec.Struct, frozen=True):
    level: str | None = None  # STANDARD, HIGH, NOT_APPLICABLE


class PhoneNumberNode(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    display_phone_number: str
    verified_name: str | None = None
    quality_rating: str | None = None
    messaging_limit_tier: str | None = None  # deprecated by Meta, still answered
    whatsapp_business_manager_messaging_limit: str | None = None
    throughput: Throughput | None = None
    name_status: str | None = None
    status: str | None = None

    @property
    def limit_tier(self) -> str | None:
        return self.whatsapp_business_manager_messaging_limit or self.messaging_limit_tier


class PhoneNumberPage(msgspec.Struct, frozen=True):
    data: list[PhoneNumberNode]
    paging: Paging = Paging()


class BusinessProfile(msgspec.Struct, frozen=True, omit_defaults=True):
    about: str | None = None
    address: str | None = None
    description: str | None = None
    email: str | None = None
    websites: list[str] | None = None
    vertical: str | None = None
    profile_picture_url: str | None = None


class ProfileAnswer(msgspec.Struct, frozen=True):
    data: list[BusinessProfile]


PHONE_NUMBER_FIELDS: Final = (
    "id,display_phone_number,verified_name,quality_rating,messaging_limit_tier,"
    "whatsapp_business_manager_messaging_limit,throughput,name_status,status"
)
PROFILE_FIELDS: Final = "about,address,description,email,websites,vertical,profile_picture_url"
