"""How Meta prices a message it delivers, under per-message pricing (docs/cloudapi/pricing.md).
Pure: the customer's windows and the send are passed in.

| the send                                          | category, type                       | bills |
|---------------------------------------------------|--------------------------------------|-------|
| anything inside an open free entry point window   | referral_conversion, free_entry_point| no    |
| a free-form reply inside the service window       | service, free_customer_service       | no    |
| a utility template inside the service window      | utility, free_customer_service       | no    |
| a marketing template through MM Lite              | marketing_lite, regular              | yes   |
| an authentication template to an auth-intl market | authentication_international, regular| yes   |
| any other template                                | its category, regular                | yes   |

A free entry point window opens when the business answers, within 24 hours, a customer who wrote
from a click-to-WhatsApp ad or a Page's call-to-action (their message carried a ``referral``), and
lasts 72 hours from that answer. Only messages of such a window carry a ``conversation`` object.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SERVICE_WINDOW_S: Final = 24 * 3600
ENTRY_POINT_WINDOW_S: Final = 72 * 3600
# Markets with authentication-international rates (Meta's "Authentication-international rates"
# page), by calling code; they apply when the business's own country is another.
AUTH_INTERNATIONAL_CODES: Final = frozenset(
    {"20", "27", "60", "62", "91", "92", "234", "966", "971"}
)


@dataclass(frozen=True)
class Price:
    billable: bool
    category: str
    type: str  # regular, free_customer_service, free_entry_point

    def pricing_object(self) -> dict[str, object]:
        """The status webhook's ``pricing`` object."""
        return {
            "billable": self.billable,
            "pricing_model": "PMP",
            "category": self.category,
            "type": self.type,
        }


@dataclass(frozen=True)
class Send:
    template_category: str | None  # MARKETING, UTILITY, AUTHENTICATION; None when free-form
    marketing_lite: bool  # sent through /marketing_messages
    business_number: str  # display phone number, digits
    wa_id: str


def calling_code(number: str, codes: frozenset[str]) -> str | None:
    """The code of ``codes`` that ``number`` starts with (codes are prefix-free)."""
    return next((code for code in codes if number.startswith(code)), None)


def base_category(send: Send) -> str:
    if send.template_category is None:
        return "service"
    category = send.template_category.lower()
    if category == "marketing" and send.marketing_lite:
        return "marketing_lite"
    if category == "authentication":
        market = calling_code(send.wa_id, AUTH_INTERNATIONAL_CODES)
        if market is not None and not send.business_number.startswith(market):
            return "authentication_international"
    return category


def price(send: Send, *, in_service_window: bool, in_entry_point: bool) -> Price:
    if in_entry_point:
        return Price(False, "referral_conversion", "free_entry_point")
    category = base_category(send)
    if in_service_window and category in ("service", "utility"):
        return Price(False, category, "free_customer_service")
    return Price(True, category, "regular")


def opens_entry_point(referral_at: float | None, entry_point_until: float, now: float) -> bool:
    """True if a send at ``now`` opens a free entry point window: the customer came from an ad
    less than 24 h ago and no window of that referral is open or spent."""
    return (
        referral_at is not None
        and now - referral_at < SERVICE_WINDOW_S
        and entry_point_until <= referral_at
    )
