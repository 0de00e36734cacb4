"""The sender's early template check: unknown, not approved, wrong counts; approved passes."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from wapipe.shared.schemas.template import Template
from wapipe.shared.template_guard import (
    ParameterCounts,
    StoredTemplate,
    expected_counts,
    refusal,
    sent_counts,
)

COMPONENTS: list[dict[str, Any]] = [
    {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
    {"type": "BODY", "text": "Hi {{1}}, order {{2}} ships {{3}}. Thanks, {{1}}!"},
    {
        "type": "BUTTONS",
        "buttons": [
            {"type": "QUICK_REPLY", "text": "Stop"},
            {"type": "URL", "text": "Track", "url": "https://x.test/{{1}}"},
        ],
    },
]


def stored(status: str | None = "APPROVED", components: Any = COMPONENTS) -> StoredTemplate:
    return StoredTemplate(
        template_id="1",
        name="order_update",
        language="en_US",
        status=status,
        category="UTILITY",
        components=components,
    )


def message(header: int = 1, body: int = 3, url: int = 1, payload: bool = True) -> Template:
    def text(n: int) -> list[dict[str, str]]:
        return [{"type": "text", "text": f"p{i}"} for i in range(n)]

    components: list[dict[str, Any]] = [
        {"type": "header", "parameters": text(header)},
        {"type": "body", "parameters": text(body)},
        {"type": "button", "sub_type": "url", "index": 1, "parameters": text(url)},
    ]
    if payload:
        components.append(
            {
                "type": "button",
                "sub_type": "quick_reply",
                "index": 0,
                "parameters": [{"type": "payload", "payload": "stop"}],
            }
        )
    return msgspec.convert(
        {"name": "order_update", "language": {"code": "en_US"}, "components": components},
        Template,
    )


def test_counts_come_from_distinct_placeholders_media_headers_and_url_buttons() -> None:
    assert expected_counts(COMPONENTS, "UTILITY") == ParameterCounts(1, 3, (0, 1))
    image: list[dict[str, Any]] = [
        {"type": "HEADER", "format": "IMAGE"},
        {"type": "BODY", "text": "Hello"},
    ]
    assert expected_counts(image, "MARKETING") == ParameterCounts(1, 0, ())
    otp: list[dict[str, Any]] = [
        {"type": "BODY"},
        {"type": "BUTTONS", "buttons": [{"type": "OTP"}]},
    ]
    assert expected_counts(otp, "AUTHENTICATION") == ParameterCounts(0, 1, (1,))


def test_sent_counts_leave_out_button_data() -> None:
    assert sent_counts(message()) == ParameterCounts(1, 3, (0, 1))


def test_approved_template_with_matching_counts_may_be_sent() -> None:
    assert refusal(message(), stored()) is None


def test_unknown_template_is_refused_naming_it() -> None:
    assert refusal(message(), None) == (
        "template order_update (en_US) is not known: run `wapipe templates sync`"
    )


@pytest.mark.parametrize("status", ["PENDING", "REJECTED", "PAUSED", None])
def test_template_not_approved_is_refused(status: str | None) -> None:
    reason = refusal(message(), stored(status))
    assert reason is not None
    assert "not APPROVED" in reason


def test_wrong_body_count_is_refused_with_both_numbers() -> None:
    assert refusal(message(body=2), stored()) == (
        "template order_update (en_US): its body takes 3 parameters, the job gives 2"
    )


def test_missing_button_parameter_is_refused() -> None:
    assert refusal(message(url=0), stored()) == (
        "template order_update (en_US): its button 1 takes 1 parameters, the job gives 0"
    )


def test_template_known_from_webhooks_only_is_checked_for_status_alone() -> None:
    assert refusal(message(body=0), stored(components=None)) is None
    assert refusal(message(body=0), stored("REJECTED", components=None)) is not None
