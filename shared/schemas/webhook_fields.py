"""The values of the webhook fields other than ``messages``: templates, phone numbers, the
account, user preferences
(docs/cloudapi/webhooks.md, templates.md). Permissive, as the whole model is."""

from __future__ import annotations

from typing import Any

from wapipe.shared.schemas.webhook_base import Contact, Metadata, WebhookStruct

# --- Template fields (docs/cloudapi/webhooks.md, templates.md) ------------------------------------
# message_template_id is an int in Meta's samples; accept a string too.


class TemplateOtherInfo(WebhookStruct, frozen=True, kw_only=True):
    title: str | None = None  # FIRST_PAUSE, SECOND_PAUSE, UNPAUSE, ...
    description: str | None = None


class TemplateDisableInfo(WebhookStruct, frozen=True, kw_only=True):
    disable_date: int | str | None = None


class TemplateRejectionInfo(WebhookStruct, frozen=True, kw_only=True):
    reason: str | None = None
    recommendation: str | None = None


class TemplateStatusUpdate(WebhookStruct, frozen=True, kw_only=True):
    event: str
    message_template_id: int | str
    message_template_name: str | None = None
    message_template_language: str | None = None
    message_template_category: str | None = None
    reason: str | None = None  # null when scheduled for deletion
    other_info: TemplateOtherInfo | None = None
    disable_info: TemplateDisableInfo | None = None
    rejection_info: TemplateRejectionInfo | None = None


class TemplateQualityUpdate(WebhookStruct, frozen=True, kw_only=True):
    message_template_id: int | str
    message_template_name: str | None = None
    message_template_language: str | None = None
    previous_quality_score: str | None = None
    new_quality_score: str | None = None  # GREEN, YELLOW, RED, UNKNOWN


class TemplateButton(WebhookStruct, frozen=True, kw_only=True):
    message_template_button_type: str | None = None
    message_template_button_text: str | None = None
    message_template_button_url: str | None = None
    message_template_button_phone_number: str | None = None


class TemplateComponentsUpdate(WebhookStruct, frozen=True, kw_only=True):
    message_template_id: int | str
    message_template_name: str | None = None
    message_template_language: str | None = None
    message_template_element: str | None = None  # the body text
    message_template_title: str | None = None
    message_template_footer: str | None = None
    message_template_buttons: tuple[TemplateButton, ...] = ()


class TemplateCategoryUpdate(WebhookStruct, frozen=True, kw_only=True):
    """Both the impending notice (correct_category) and the completed change (previous_category)."""

    message_template_id: int | str
    message_template_name: str | None = None
    message_template_language: str | None = None
    previous_category: str | None = None
    new_category: str | None = None
    correct_category: str | None = None
    category_update_timestamp: int | str | None = None


# --- Phone number and account fields (docs/cloudapi/webhooks.md) ----------------------------------


class PhoneNumberQualityUpdate(WebhookStruct, frozen=True, kw_only=True):
    event: str  # old and new event names alike (docs/cloudapi/webhooks.md)
    display_phone_number: str | None = None
    current_limit: str | None = None  # announced for removal
    old_limit: str | None = None
    max_daily_conversations_per_business: int | str | None = None


class PhoneNumberNameUpdate(WebhookStruct, frozen=True, kw_only=True):
    decision: str
    display_phone_number: str | None = None
    requested_verified_name: str | None = None
    rejection_reason: str | None = None


class ViolationInfo(WebhookStruct, frozen=True, kw_only=True):
    violation_type: str | None = None


class BanInfo(WebhookStruct, frozen=True, kw_only=True):
    waba_ban_state: str | None = None
    waba_ban_date: int | str | None = None


class RestrictionInfo(WebhookStruct, frozen=True, kw_only=True):
    restriction_type: str | None = None
    expiration: int | str | None = None


class DisconnectionInfo(WebhookStruct, frozen=True, kw_only=True):
    reason: str | None = None
    initiated_by: str | None = None


class AccountUpdate(WebhookStruct, frozen=True, kw_only=True):
    """``event`` plus the object that event carries; the ones that vary stay plain dicts."""

    event: str
    phone_number: str | None = None
    country: str | None = None
    violation_info: ViolationInfo | None = None
    ban_info: BanInfo | None = None
    restriction_info: tuple[RestrictionInfo, ...] = ()
    disconnection_info: DisconnectionInfo | None = None
    waba_info: dict[str, Any] | None = None
    volume_tier_info: dict[str, Any] | None = None
    auth_international_rate_eligibility: dict[str, Any] | None = None
    partner_client_certification_info: dict[str, Any] | None = None


class AlertInfo(WebhookStruct, frozen=True, kw_only=True):
    alert_severity: str | None = None  # CRITICAL, WARNING, INFORMATIONAL
    alert_status: str | None = None
    alert_type: str | None = None
    alert_description: str | None = None


class AccountAlerts(WebhookStruct, frozen=True, kw_only=True):
    entity_type: str | None = None
    entity_id: int | str | None = None
    alert_info: AlertInfo | None = None


class AccountReviewUpdate(WebhookStruct, frozen=True, kw_only=True):
    decision: str


class BusinessCapabilityUpdate(WebhookStruct, frozen=True, kw_only=True):
    max_daily_conversation_per_phone: int | None = None  # -1 = unlimited
    max_daily_conversations_per_business: int | str | None = None  # doc: TIER_*; sample: int
    max_phone_numbers_per_business: int | None = None
    max_phone_numbers_per_waba: int | None = None


class Security(WebhookStruct, frozen=True, kw_only=True):
    event: str  # PIN_CHANGED, PIN_RESET_REQUEST, PIN_REQUEST_SUCCESS
    display_phone_number: str | None = None
    requester: str | None = None


class UserPreference(WebhookStruct, frozen=True, kw_only=True):
    value: str  # "stop" or "resume" (pywa also knows "signup")
    category: str | None = None  # "marketing_messages"
    wa_id: str | None = None
    user_id: str | None = None
    detail: str | None = None
    timestamp: int | str | None = None  # an int here, unlike messages and statuses
    signup_id: str | None = None


class UserPreferencesValue(WebhookStruct, frozen=True, kw_only=True):
    messaging_product: str | None = None
    metadata: Metadata | None = None
    contacts: tuple[Contact, ...] = ()
    user_preferences: tuple[UserPreference, ...] = ()


class FlowsUpdate(WebhookStruct, frozen=True, kw_only=True):
    """``value`` of field ``flows`` (docs/cloudapi/flows.md, "The flows webhook"): a flow's
    status change (``event`` FLOW_STATUS_CHANGE, old and new status) or an endpoint alert
    (ENDPOINT_ERROR_RATE, ENDPOINT_LATENCY, ENDPOINT_AVAILABILITY, CLIENT_ERROR_RATE, ...) with
    its ``alert_state`` and the figures Meta measured; those figures vary by alert and stay as
    they came."""

    event: str
    flow_id: str
    message: str | None = None
    old_status: str | None = None
    new_status: str | None = None
    alert_state: str | None = None
    threshold: float | None = None
    p50_latency: float | None = None
    p90_latency: float | None = None
    requests_count: int | None = None
    error_rate: float | None = None
    availability: float | None = None
    errors: tuple[dict[str, Any], ...] = ()
