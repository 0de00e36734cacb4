"""The sandbox prices each message as Meta's per-message pricing does (sandbox/pricing.py)."""

from __future__ import annotations

import pytest

from wapipe.sandbox.pricing import Price, Send, opens_entry_point, price

US_BUSINESS = "15550101234"


def send(category: str | None, to: str = "16315551181", *, lite: bool = False) -> Send:
    return Send(category, lite, US_BUSINESS, to)


@pytest.mark.parametrize(
    ("sent", "window", "entry", "expected"),
    [
        (send(None), True, False, Price(False, "service", "free_customer_service")),
        (send("UTILITY"), True, False, Price(False, "utility", "free_customer_service")),
        (send("UTILITY"), False, False, Price(True, "utility", "regular")),
        (send("MARKETING"), True, False, Price(True, "marketing", "regular")),
        (send("MARKETING", lite=True), False, False, Price(True, "marketing_lite", "regular")),
        (send("AUTHENTICATION"), False, False, Price(True, "authentication", "regular")),
        (
            send("AUTHENTICATION", "919876543210"),
            False,
            False,
            Price(True, "authentication_international", "regular"),
        ),
        (send("MARKETING"), False, True, Price(False, "referral_conversion", "free_entry_point")),
        (send(None), True, True, Price(False, "referral_conversion", "free_entry_point")),
    ],
)
def test_each_send_is_priced_as_meta_prices_it(
    sent: Send, window: bool, entry: bool, expected: Price
) -> None:
    assert price(sent, in_service_window=window, in_entry_point=entry) == expected


def test_an_answer_within_24_hours_of_an_ad_opens_one_entry_point_window() -> None:
    assert opens_entry_point(1000.0, 0.0, 1000.0 + 3600)
    assert not opens_entry_point(1000.0, 0.0, 1000.0 + 24 * 3600)  # answered too late
    assert not opens_entry_point(1000.0, 1000.0 + 72 * 3600, 2000.0)  # this referral's is open
    assert not opens_entry_point(None, 0.0, 1000.0)  # not from an ad
