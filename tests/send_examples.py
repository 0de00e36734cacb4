"""One message object of every kind a send job carries, as its JSON: shared by the unit tests of
the job contract and the test that sends each through the sandbox."""

from __future__ import annotations

from typing import Any, Final

MEDIA_KINDS: Final = ("image", "audio", "video", "document", "sticker")
LINK: Final = "https://files.example.com/brochure"
IMAGE_LINK: Final = "https://files.example.com/header.jpg"

_MEDIA_EXTRAS: Final[dict[str, dict[str, Any]]] = {
    "image": {"caption": "Our new shop"},
    "audio": {},
    "video": {"caption": "How it works"},
    "document": {"caption": "The price list", "filename": "prices.pdf"},
    "sticker": {},
}

# The template of ``TEMPLATE`` as it is created (upper-case component types at creation).
ORDER_TEMPLATE: Final[dict[str, Any]] = {
    "name": "order_shipped",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        # an example for each placeholder and media header (docs/cloudapi/template-rules.md)
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1hZ2U="]}},
        {
            "type": "BODY",
            "text": "Hi {{1}}, your order of {{2}} ships on {{3}}.",
            "example": {"body_text": [["Ana", "a lamp", "Monday"]]},
        },
        {"type": "FOOTER", "text": "Thank you"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop updates"},
                {
                    "type": "URL",
                    "text": "Track",
                    "url": "https://track.example.com/{{1}}",
                    "example": ["https://track.example.com/A123"],
                },
                {"type": "COPY_CODE", "example": "SAVE10"},
            ],
        },
    ],
}


def media_message(kind: str, source: dict[str, str]) -> dict[str, Any]:
    """A media message of ``kind`` from ``source`` ({"id": ...}, {"link": ...}, {"file": ...})."""
    return {"type": kind, kind: {**source, **_MEDIA_EXTRAS[kind]}}


def _interactive(kind: str, **parts: Any) -> dict[str, Any]:
    return {"type": "interactive", "interactive": {"type": kind, **parts}}


INTERACTIVE: Final[dict[str, dict[str, Any]]] = {
    "button": _interactive(
        "button",
        header={"type": "image", "image": {"link": IMAGE_LINK}},
        body={"text": "Is this time good for you?"},
        footer={"text": "Reply with a button"},
        action={
            "buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes"}},
                {"type": "reply", "reply": {"id": "later", "title": "Later"}},
                {"type": "reply", "reply": {"id": "no", "title": "No, thanks"}},
            ]
        },
    ),
    "list": _interactive(
        "list",
        header={"type": "text", "text": "Opening hours"},
        body={"text": "Pick a shop"},
        action={
            "button": "Shops",
            "sections": [
                {
                    "title": "North",
                    "rows": [{"id": "n1", "title": "Harbour", "description": "9-5"}],
                },
                {"title": "South", "rows": [{"id": "s1", "title": "Station"}]},
            ],
        },
    ),
    "cta_url": _interactive(
        "cta_url",
        header={"type": "text", "text": "Your receipt"},
        body={"text": "It is ready."},
        action={
            "name": "cta_url",
            "parameters": {"display_text": "Open", "url": "https://shop.example.com/r/1"},
        },
    ),
    "flow": _interactive(
        "flow",
        body={"text": "Book a visit"},
        action={
            "name": "flow",
            "parameters": {
                "flow_message_version": "3",
                "flow_id": "1234567890",
                "flow_cta": "Book",
                "flow_token": "visit-42",
                "mode": "published",
                "flow_action": "navigate",
                "flow_action_payload": {"screen": "WELCOME", "data": {"shop": "harbour"}},
            },
        },
    ),
    "product": _interactive(
        "product",
        body={"text": "The one you asked about"},
        action={"catalog_id": "778899", "product_retailer_id": "sku-1"},
    ),
    "product_list": _interactive(
        "product_list",
        header={"type": "text", "text": "New in"},
        body={"text": "This week's arrivals"},
        action={
            "catalog_id": "778899",
            "sections": [
                {"title": "Shoes", "product_items": [{"product_retailer_id": "sku-1"}]},
                {"title": "Bags", "product_items": [{"product_retailer_id": "sku-2"}]},
            ],
        },
    ),
    "catalog_message": _interactive(
        "catalog_message",
        body={"text": "Browse our catalog"},
        action={
            "name": "catalog_message",
            "parameters": {"thumbnail_product_retailer_id": "sku-1"},
        },
    ),
    "location_request_message": _interactive(
        "location_request_message",
        body={"text": "Where should we deliver?"},
        action={"name": "send_location"},
    ),
}

TEMPLATE: Final[dict[str, Any]] = {
    "type": "template",
    "template": {
        "name": "order_shipped",
        "language": {"code": "en_US"},
        "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": IMAGE_LINK}}]},
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Ana"},
                    {
                        "type": "currency",
                        "currency": {
                            "fallback_value": "$12.50",
                            "code": "USD",
                            "amount_1000": 12500,
                        },
                    },
                    {"type": "date_time", "date_time": {"fallback_value": "18 Nov 2026"}},
                ],
            },
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": 0,
                "parameters": [{"type": "payload", "payload": "STOP_UPDATES"}],
            },
            {
                "type": "button",
                "sub_type": "url",
                "index": 1,
                "parameters": [{"type": "text", "text": "A1B2C3"}],
            },
            {
                "type": "button",
                "sub_type": "copy_code",
                "index": 2,
                "parameters": [{"type": "coupon_code", "coupon_code": "SAVE10"}],
            },
        ],
    },
}

TEXT: Final[dict[str, Any]] = {
    "type": "text",
    "text": {"body": "See https://shop.example.com", "preview_url": True},
}
LOCATION: Final[dict[str, Any]] = {
    "type": "location",
    "location": {"latitude": 52.37, "longitude": 4.89, "name": "Harbour", "address": "Pier 1"},
}
CONTACTS: Final[dict[str, Any]] = {
    "type": "contacts",
    "contacts": [
        {
            "name": {"formatted_name": "Ana Silva", "first_name": "Ana", "last_name": "Silva"},
            "phones": [{"phone": "+1 631 555 1181", "type": "CELL", "wa_id": "16315551181"}],
            "emails": [{"email": "ana@example.com", "type": "WORK"}],
            "org": {"company": "Harbour Shop"},
            "birthday": "1990-04-01",
        }
    ],
}


def reaction(message_id: str, emoji: str = "\N{THUMBS UP SIGN}") -> dict[str, Any]:
    return {"type": "reaction", "reaction": {"message_id": message_id, "emoji": emoji}}


def every_kind(media_source: dict[str, str], reaction_to: str) -> dict[str, dict[str, Any]]:
    """One message of each kind, media from ``media_source``, by a name for the test id."""
    return {
        "text": TEXT,
        **{kind: media_message(kind, media_source) for kind in MEDIA_KINDS},
        "location": LOCATION,
        "contacts": CONTACTS,
        **{f"interactive-{kind}": message for kind, message in INTERACTIVE.items()},
        "template": TEMPLATE,
        "reaction": reaction(reaction_to),
    }
