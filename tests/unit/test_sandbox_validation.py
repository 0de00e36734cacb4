"""The sandbox checks a send body as the Cloud API does: what parses, which code refuses what."""

from __future__ import annotations

from typing import Any

import pytest

from wapipe.sandbox.errors import GraphError
from wapipe.sandbox.templates import TemplateSpec, template_spec
from wapipe.sandbox.validation import ReadRequest, SendRequest, parse_messages_request

WAMID = "wamid.HBgLMTYzMTU1NTExODEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"

# The creation payload behind docs/cloudapi/sending.md's send example.
ORDER_UPDATE_CREATED: dict[str, Any] = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["4::aW1h"]}},
        {"type": "BODY", "text": "Hi {{1}}, you paid {{2}} on {{3}}."},
        {"type": "FOOTER", "text": "Thanks for shopping"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop promotions"},
                {"type": "URL", "text": "Track", "url": "https://shop.example/o/{{1}}"},
            ],
        },
    ],
}
ORDER_UPDATE = template_spec(ORDER_UPDATE_CREATED, "APPROVED")
WELCOME = TemplateSpec("welcome", "en", "APPROVED", "MARKETING", 0, 0, ())
PAUSED = TemplateSpec("spring_sale", "en", "PAUSED", "MARKETING", 0, 0, ())
SHIPPED = TemplateSpec("shipped", "en", "APPROVED", "UTILITY", 1, 0, ())  # a text header {{1}}
TEMPLATES = {(spec.name, spec.language): spec for spec in (ORDER_UPDATE, WELCOME, PAUSED, SHIPPED)}


def find_template(name: str, language: str) -> TemplateSpec | None:
    return TEMPLATES.get((name, language))


def body_of(kind: str, payload: Any, **extra: Any) -> dict[str, Any]:
    body = {"messaging_product": "whatsapp", "to": "16315551181", "type": kind, kind: payload}
    return body | extra


def parsed(body: Any) -> SendRequest:
    request = parse_messages_request(body, find_template)
    assert isinstance(request, SendRequest)
    return request


def refusal(body: Any) -> int:
    with pytest.raises(GraphError) as caught:
        parse_messages_request(body, find_template)
    return caught.value.code


def order_update(components: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": "order_update", "language": {"code": "en_US"}, "components": components}


def order_update_components() -> list[dict[str, Any]]:
    """docs/cloudapi/sending.md's example: an image header, three body params, two buttons."""
    return [
        {"type": "header", "parameters": [{"type": "image", "image": {"id": "1037543291543636"}}]},
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Ana"},
                {
                    "type": "currency",
                    "currency": {"fallback_value": "$12.50", "code": "USD", "amount_1000": 12500},
                },
                {"type": "date_time", "date_time": {"fallback_value": "18 Nov 2026"}},
            ],
        },
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": "0",
            "parameters": [{"type": "payload", "payload": "STOP_PROMOS"}],
        },
        {
            "type": "button",
            "sub_type": "url",
            "index": 1,
            "parameters": [{"type": "text", "text": "A1B2C3"}],
        },
    ]


def reply_buttons(count: int) -> dict[str, Any]:
    buttons = [
        {"type": "reply", "reply": {"id": f"b{i}", "title": f"Option {i}"}} for i in range(count)
    ]
    return {"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": buttons}}


def list_message(rows_per_section: list[int]) -> dict[str, Any]:
    sections = [
        {
            "title": f"Section {s}",
            "rows": [{"id": f"r{s}.{r}", "title": f"Row {r}"} for r in range(rows)],
        }
        for s, rows in enumerate(rows_per_section)
    ]
    return {
        "type": "list",
        "body": {"text": "Our menu"},
        "action": {"button": "See the menu", "sections": sections},
    }


INTERACTIVE_KINDS: list[dict[str, Any]] = [
    reply_buttons(2),
    list_message([2]) | {"header": {"type": "text", "text": "Menu"}, "footer": {"text": "Bye"}},
    {
        "type": "cta_url",
        "header": {"type": "image", "image": {"link": "https://shop.example/a.png"}},
        "body": {"text": "See the offer"},
        "action": {
            "name": "cta_url",
            "parameters": {"display_text": "Open", "url": "https://shop.example/offer"},
        },
    },
    {
        "type": "flow",
        "body": {"text": "Book a table"},
        "action": {
            "name": "flow",
            "parameters": {
                "flow_message_version": "3",
                "flow_name": "booking",
                "flow_cta": "Book",
                "flow_action": "navigate",
                "flow_action_payload": {"screen": "START", "data": {"guests": 2}},
            },
        },
    },
    {"type": "product", "action": {"catalog_id": "123", "product_retailer_id": "sku-1"}},
    {
        "type": "product_list",
        "header": {"type": "text", "text": "Our shoes"},
        "body": {"text": "Pick a pair"},
        "action": {
            "catalog_id": "123",
            "sections": [
                {"title": "Running", "product_items": [{"product_retailer_id": "sku-1"}]},
                {"title": "Walking", "product_items": [{"product_retailer_id": "sku-2"}]},
            ],
        },
    },
    {"type": "catalog_message", "body": {"text": "Browse"}, "action": {"name": "catalog_message"}},
    {
        "type": "location_request_message",
        "body": {"text": "Where are you?"},
        "action": {"name": "send_location"},
    },
    {
        "type": "call_permission_request",
        "body": {"text": "May we call you?"},
        "action": {"name": "call_permission_request"},
    },
]

VALID_PAYLOADS: list[tuple[str, Any]] = [
    ("text", {"body": "Hello https://shop.example", "preview_url": True}),
    ("image", {"id": "1037543291543636", "caption": "Your receipt"}),
    ("audio", {"link": "https://shop.example/a.ogg", "voice": True}),
    ("video", {"link": "http://shop.example/v.mp4", "caption": "How to"}),
    ("document", {"id": "1037543291543636", "caption": "Invoice", "filename": "invoice.pdf"}),
    ("sticker", {"id": "1037543291543636"}),
    ("location", {"latitude": -33.86, "longitude": 151.2, "name": "Office", "address": "1 Main"}),
    ("contacts", [{"name": {"formatted_name": "Ana Lima", "first_name": "Ana"}}]),
    ("reaction", {"message_id": WAMID, "emoji": "\N{GRINNING FACE}"}),
    ("reaction", {"message_id": WAMID, "emoji": ""}),
    *(("interactive", kind) for kind in INTERACTIVE_KINDS),
]


@pytest.mark.parametrize(
    ("kind", "payload"),
    VALID_PAYLOADS,
    ids=[
        f"{kind}-{payload['type']}" if kind == "interactive" else kind
        for kind, payload in VALID_PAYLOADS
    ],
)
def test_a_valid_payload_of_each_type_parses_to_a_send_request(kind: str, payload: Any) -> None:
    request = parsed(body_of(kind, payload))
    assert request.type == kind
    assert request.payload == payload
    assert request.wa_id == "16315551181"
    assert request.template is None


def test_a_valid_template_send_parses_with_its_spec() -> None:
    body = body_of(
        "template", order_update(order_update_components()), biz_opaque_callback_data="job-7"
    )
    request = parsed(body)
    assert request.template == ORDER_UPDATE
    assert request.biz_opaque_callback_data == "job-7"
    assert request.context_message_id is None


def test_a_template_without_parameters_needs_no_components() -> None:
    request = parsed(body_of("template", {"name": "welcome", "language": {"code": "en"}}))
    assert request.template == WELCOME


def test_type_defaults_to_text() -> None:
    request = parsed({"messaging_product": "whatsapp", "to": "16315551181", "text": {"body": "hi"}})
    assert request.type == "text"
    assert request.payload == {"body": "hi"}


def test_context_and_callback_data_are_carried() -> None:
    request = parsed(
        body_of("text", {"body": "hi"}, context={"message_id": WAMID}, biz_opaque_callback_data="x")
    )
    assert request.context_message_id == WAMID
    assert request.biz_opaque_callback_data == "x"


def test_unknown_top_level_keys_are_ignored() -> None:
    request = parsed(body_of("text", {"body": "hi"}, recipient_type="individual", future_key=[1]))
    assert request.type == "text"


def test_phone_is_normalised_to_digits_and_the_input_kept_as_given() -> None:
    body = body_of("text", {"body": "hi"}) | {"to": "+1 (631) 555-1181"}
    request = parsed(body)
    assert request.to == "+1 (631) 555-1181"
    assert request.wa_id == "16315551181"


def test_a_bsuid_recipient_stands_in_for_to() -> None:
    body = {
        "messaging_product": "whatsapp",
        "recipient": "US.13491208655302741918",
        "text": {"body": "hi"},
    }
    request = parsed(body)
    assert request.to == request.wa_id == "US.13491208655302741918"


def test_mark_as_read_parses_to_a_read_request() -> None:
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": WAMID}
    assert parse_messages_request(body, find_template) == ReadRequest(WAMID, typing_indicator=False)


def test_mark_as_read_with_typing_indicator() -> None:
    body = {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": WAMID,
        "typing_indicator": {"type": "text"},
    }
    assert parse_messages_request(body, find_template) == ReadRequest(WAMID, typing_indicator=True)


# --- each code, from several bodies ------------------------------------------------------------

REFUSED: list[tuple[int, Any]] = [
    # 100: not an object, a wrong JSON type, a value that is not allowed at all
    (100, ["not", "an", "object"]),
    (100, "text"),
    (100, {"messaging_product": "sms", "to": "16315551181", "text": {"body": "hi"}}),
    (100, body_of("text", {"body": "hi"}) | {"to": 16315551181}),
    (100, body_of("text", "hi")),
    (100, body_of("text", {"body": "hi", "preview_url": "yes"})),
    (100, body_of("image", {"id": "1", "link": "https://shop.example/a.png"})),
    (100, body_of("audio", {"id": "1", "caption": "no captions on audio"})),
    (100, body_of("sticker", {"id": "1", "caption": "nor on stickers"})),
    (100, body_of("image", {"id": "1", "filename": "a.png"})),
    (100, body_of("location", {"latitude": "1.5", "longitude": 2})),
    (100, body_of("reaction", {"message_id": WAMID, "emoji": "x"}, context={"message_id": WAMID})),
    (100, body_of("text", {"body": "hi"}, context={"message_id": 5})),
    (100, body_of("text", {"body": "hi"}, context={})),
    (100, body_of("text", {"body": "hi"}, biz_opaque_callback_data=7)),
    (
        100,
        body_of("template", order_update([{"type": "button", "sub_type": "url", "index": True}])),
    ),
    # 131008: a required part is missing
    (131008, {"to": "16315551181", "text": {"body": "hi"}}),
    (131008, {"messaging_product": "whatsapp", "text": {"body": "hi"}}),
    (131008, {"messaging_product": "whatsapp", "status": "read"}),
    (131008, {"messaging_product": "whatsapp", "to": "16315551181", "type": "image"}),
    (131008, body_of("text", {"preview_url": False})),
    (131008, body_of("text", {"body": ""})),
    (131008, body_of("document", {"caption": "where is the file?"})),
    (131008, body_of("location", {"latitude": 1.5})),
    (131008, body_of("contacts", [])),
    (131008, body_of("contacts", [{"name": {"first_name": "Ana"}}])),
    (131008, body_of("reaction", {"emoji": "x"})),
    (131008, body_of("reaction", {"message_id": WAMID})),
    (131008, body_of("interactive", reply_buttons(1) | {"body": None})),
    (131008, body_of("interactive", {"type": "location_request_message", "body": {"text": "?"}})),
    (
        131008,
        body_of(
            "interactive",
            list_message([1, 1])
            | {
                "action": {
                    "button": "Menu",
                    "sections": [
                        {"rows": [{"id": "a", "title": "A"}]},
                        {"rows": [{"id": "b", "title": "B"}]},
                    ],
                }
            },
        ),
    ),
    (131008, body_of("interactive", INTERACTIVE_KINDS[5] | {"header": None})),
    (
        131008,
        body_of(
            "interactive",
            {
                "type": "flow",
                "body": {"text": "Book"},
                "action": {
                    "name": "flow",
                    "parameters": {"flow_message_version": "3", "flow_cta": "Book"},
                },
            },
        ),
    ),
    (131008, body_of("template", {"language": {"code": "en"}})),
    (131008, body_of("template", {"name": "welcome", "language": {"policy": "deterministic"}})),
    (131008, body_of("template", order_update([{"type": "button", "sub_type": "url"}]))),
    # 131009: a value that is not valid
    (131009, body_of("text", {"body": "hi"}) | {"to": "call me"}),
    (131009, body_of("text", {"body": "hi"}) | {"to": "+1 (23)"}),
    (131009, body_of("text", {"body": "hi"}) | {"to": "1" * 16}),
    (131009, body_of("image", {"link": "ftp://shop.example/a.png"})),
    (131009, body_of("image", {"id": "1", "caption": "c" * 1025})),
    (131009, body_of("location", {"latitude": 91, "longitude": 0})),
    (131009, body_of("location", {"latitude": 0, "longitude": -180.5})),
    (131009, body_of("interactive", reply_buttons(1) | {"type": "poll"})),
    (131009, body_of("interactive", reply_buttons(0))),
    (131009, body_of("interactive", reply_buttons(1) | {"body": {"text": "b" * 1025}})),
    (131009, body_of("interactive", reply_buttons(1) | {"footer": {"text": "f" * 61}})),
    (
        131009,
        body_of("interactive", reply_buttons(1) | {"header": {"type": "text", "text": "h" * 61}}),
    ),
    (
        131009,
        body_of(
            "interactive", list_message([1]) | {"header": {"type": "image", "image": {"id": "1"}}}
        ),
    ),
    (
        131009,
        body_of(
            "interactive",
            {
                "type": "button",
                "body": {"text": "Pick"},
                "action": {
                    "buttons": [
                        {"type": "reply", "reply": {"id": "a", "title": "Same"}},
                        {"type": "reply", "reply": {"id": "b", "title": "Same"}},
                    ]
                },
            },
        ),
    ),
    (
        131009,
        body_of(
            "interactive",
            {
                "type": "button",
                "body": {"text": "Pick"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "a", "title": "t" * 21}}]},
            },
        ),
    ),
    (
        131009,
        body_of(
            "interactive",
            {
                "type": "button",
                "body": {"text": "Pick"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": " a", "title": "A"}}]},
            },
        ),
    ),
    (
        131009,
        body_of(
            "interactive",
            INTERACTIVE_KINDS[2]
            | {
                "action": {
                    "name": "cta_url",
                    "parameters": {"display_text": "d" * 21, "url": "https://a.example"},
                }
            },
        ),
    ),
    (131009, body_of("interactive", INTERACTIVE_KINDS[7] | {"action": {"name": "send_places"}})),
    (
        131009,
        body_of("interactive", INTERACTIVE_KINDS[4] | {"header": {"type": "text", "text": "No"}}),
    ),
    (
        131009,
        body_of(
            "interactive",
            INTERACTIVE_KINDS[5]
            | {
                "action": {
                    "catalog_id": "1",
                    "sections": [
                        {"product_items": [{"product_retailer_id": str(i)} for i in range(31)]}
                    ],
                }
            },
        ),
    ),
    (131009, body_of("text", {"body": "hi"}, biz_opaque_callback_data="x" * 513)),
    (131009, body_of("template", order_update([{"type": "footer"}]))),
    (
        131009,
        body_of("template", order_update([{"type": "button", "sub_type": "url", "index": 10}])),
    ),
    (
        131009,
        body_of(
            "template",
            order_update(
                [
                    *order_update_components()[1:],
                    {"type": "header", "parameters": [{"type": "text", "text": "h" * 61}]},
                ]
            ),
        ),
    ),
    # 131051: not a type that can be sent
    (131051, body_of("poll", {"question": "?"})),
    (131051, body_of("order", {"catalog_id": "1"})),
    (131051, body_of("TEXT", {"body": "hi"})),
    # 132001: no such template in that language, or not approved
    (132001, body_of("template", {"name": "no_such_template", "language": {"code": "en_US"}})),
    (132001, body_of("template", {"name": "order_update", "language": {"code": "en_GB"}})),
    (132001, body_of("template", {"name": "spring_sale", "language": {"code": "en"}})),
    # 132000: parameters sent do not match the template's placeholders
    (132000, body_of("template", order_update(order_update_components()[1:]))),
    (132000, body_of("template", order_update(order_update_components()[:3]))),
    (
        132000,
        body_of(
            "template",
            {
                "name": "welcome",
                "language": {"code": "en"},
                "components": [{"type": "body", "parameters": [{"type": "text", "text": "extra"}]}],
            },
        ),
    ),
    (
        132000,
        body_of(
            "template",
            order_update(
                [
                    order_update_components()[0],
                    {"type": "body", "parameters": [{"type": "text", "text": "Ana"}]},
                ]
            ),
        ),
    ),
]


@pytest.mark.parametrize(("code", "body"), REFUSED)
def test_a_bad_body_is_refused_with_the_cloud_api_code(code: int, body: Any) -> None:
    assert refusal(body) == code


def test_every_code_is_produced_by_at_least_two_bodies() -> None:
    codes = [code for code, _ in REFUSED]
    for code in (100, 131008, 131009, 131051, 132001, 132000):
        assert codes.count(code) >= 2


def test_an_error_names_the_field_in_its_details() -> None:
    with pytest.raises(GraphError) as caught:
        parse_messages_request(body_of("image", {"id": "1", "caption": "c" * 1025}), find_template)
    assert caught.value.details == "image.caption is longer than 1024 characters"


def test_a_missing_template_names_it_and_its_language() -> None:
    with pytest.raises(GraphError) as caught:
        parse_messages_request(
            body_of("template", {"name": "order_update", "language": {"code": "en_GB"}}),
            find_template,
        )
    assert caught.value.details == "template name (order_update) does not exist in en_GB"


# --- limits at the boundary -------------------------------------------------------------------


def test_text_body_of_4096_characters_is_accepted_and_4097_refused() -> None:
    assert parsed(body_of("text", {"body": "a" * 4096})).type == "text"
    # 100, as the kit's sample answer for this very case (responses/err_100_invalid_parameter.json)
    assert refusal(body_of("text", {"body": "a" * 4097})) == 100


def test_three_reply_buttons_are_accepted_and_four_refused() -> None:
    assert parsed(body_of("interactive", reply_buttons(3))).type == "interactive"
    assert refusal(body_of("interactive", reply_buttons(4))) == 131009


@pytest.mark.parametrize("rows_per_section", [[10], [6, 4]])
def test_ten_list_rows_in_total_are_accepted(rows_per_section: list[int]) -> None:
    assert parsed(body_of("interactive", list_message(rows_per_section))).type == "interactive"


@pytest.mark.parametrize("rows_per_section", [[11], [6, 5], [1] * 11])
def test_eleven_list_rows_in_total_are_refused(rows_per_section: list[int]) -> None:
    assert refusal(body_of("interactive", list_message(rows_per_section))) == 131009


def test_callback_data_of_512_characters_is_accepted_and_513_refused() -> None:
    request = parsed(body_of("text", {"body": "hi"}, biz_opaque_callback_data="x" * 512))
    assert request.biz_opaque_callback_data == "x" * 512
    assert refusal(body_of("text", {"body": "hi"}, biz_opaque_callback_data="x" * 513)) == 131009


def test_phone_of_5_and_15_digits_is_accepted_4_and_16_refused() -> None:
    for to in ("12345", "1" * 15):
        assert parsed(body_of("text", {"body": "hi"}) | {"to": to}).wa_id == to
    for to in ("1234", "1" * 16):
        assert refusal(body_of("text", {"body": "hi"}) | {"to": to}) == 131009


@pytest.mark.parametrize(("length", "accepted"), [(60, True), (61, False)])
def test_header_text_parameter_of_60_characters_is_accepted_61_refused(
    length: int, accepted: bool
) -> None:
    header = {"type": "header", "parameters": [{"type": "text", "text": "h" * length}]}
    body = body_of(
        "template", {"name": "shipped", "language": {"code": "en"}, "components": [header]}
    )
    if accepted:
        assert parsed(body).template == SHIPPED
    else:
        assert refusal(body) == 131009


# --- template_spec ----------------------------------------------------------------------------


def test_template_spec_counts_distinct_positional_and_named_placeholders_and_url_buttons() -> None:
    created = {
        "name": "shipping_update",
        "language": "pt_BR",
        "category": "MARKETING",
        "parameter_format": "NAMED",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{order_id}}"},
            {
                "type": "BODY",
                "text": "Hi {{first_name}}, order {{order_id}} ships {{date}}. Bye {{first_name}}",
            },
            {"type": "FOOTER", "text": "Reply STOP to opt out"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop"},
                    {"type": "URL", "text": "Track", "url": "https://shop.example/t/{{1}}"},
                    {"type": "URL", "text": "Shop", "url": "https://shop.example/"},
                    {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+15550101234"},
                ],
            },
        ],
    }
    assert template_spec(created, "PENDING") == TemplateSpec(
        name="shipping_update",
        language="pt_BR",
        status="PENDING",
        category="MARKETING",
        header_params=1,
        body_params=3,
        button_params=(0, 1, 0, 0),
    )


def test_template_spec_counts_positional_placeholders_and_a_media_header() -> None:
    spec = template_spec(ORDER_UPDATE_CREATED, "APPROVED")
    assert spec == TemplateSpec("order_update", "en_US", "APPROVED", "UTILITY", 1, 3, (0, 1))


def test_authentication_template_takes_the_code_in_its_body_and_its_button() -> None:
    created = {
        "name": "login_code",
        "language": "en",
        "category": "AUTHENTICATION",
        "components": [
            {"type": "BODY", "add_security_recommendation": True},
            {"type": "FOOTER", "code_expiration_minutes": 10},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]},
        ],
    }
    spec = template_spec(created, "APPROVED")
    assert (spec.header_params, spec.body_params, spec.button_params) == (0, 1, (1,))
