"""``wapipe report``'s charges against a hand count over a day of every pricing case, priced with
the shipped example table (examples/prices.toml), to the cent."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from wapipe.cli.report.charges import PriceTableError, load_price_table, parse_price_table
from wapipe.cli.report.figures import build
from wapipe.shared.storage.report import StatusFact

EXAMPLE = Path(__file__).parents[2] / "examples" / "prices.toml"
DAY = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())  # per-message pricing
OLD = int(datetime(2025, 6, 30, tzinfo=UTC).timestamp())  # conversation-based pricing
US, IN, BR, GB = "16315551181", "919876543210", "5511987654321", "447700900123"


def pmp(
    wamid: str, to: str, category: str, kind: str, *statuses: str, billable: bool | None = None
) -> list[StatusFact]:
    """A message's statuses, a second apart, each with its pricing object as Meta sends it."""
    billed = (kind == "regular") if billable is None else billable
    return [
        StatusFact(
            wamid, "111", status, DAY + 100 + i, None, None, category, to, billed, "PMP", kind
        )
        for i, status in enumerate(statuses)
    ]


def cbp(
    wamid: str, to: str, conversation: str, category: str, billable: bool, *statuses: str
) -> list[StatusFact]:
    return [
        StatusFact(
            wamid, "111", status, OLD + 100 + i, None, conversation, category, to, billable, "CBP"
        )
        for i, status in enumerate(statuses)
    ]


def mixed_day() -> list[StatusFact]:
    facts = [
        # Billable, charged once each on delivery (read implies it):
        *pmp("a1", US, "marketing", "regular", "sent", "delivered", "read", "delivered"),
        *pmp("a3", US, "marketing", "regular", "sent", "read"),
        *pmp("a4", IN, "utility", "regular", "sent", "delivered"),
        *pmp("a8", US, "marketing_lite", "regular", "sent", "delivered"),
        *pmp("a9", IN, "authentication_international", "regular", "sent", "delivered"),
        *pmp("a10", GB, "authentication", "regular", "sent", "delivered"),
        *pmp("a11", GB, "marketing", "regular", "sent", "delivered", billable=None),
        *pmp("a12", IN, "marketing", "regular", "delivered"),
        # Billable but never delivered: not charged.
        *pmp("a2", US, "marketing", "regular", "sent"),
        # Free:
        *pmp("a5", US, "utility", "free_customer_service", "sent", "delivered", billable=False),
        *pmp("a6", US, "service", "free_customer_service", "sent", "delivered", billable=False),
        *pmp("a7", BR, "referral_conversion", "free_entry_point", "delivered", billable=False),
        # Before 2025-07-01: one charge per billable conversation delivered.
        *cbp("b1", US, "k1", "marketing", True, "sent", "delivered"),
        *cbp("b2", US, "k1", "marketing", True, "sent", "delivered", "read"),
        *cbp("b3", IN, "k2", "service", True, "sent", "delivered"),
        *cbp("b4", IN, "k2", "service", True, "delivered"),
        *cbp("b5", US, "k3", "referral_conversion", False, "sent", "delivered"),
        *cbp("b6", US, "k4", "utility", True, "sent"),
    ]
    facts[3] = StatusFact("a1", "111", "delivered", DAY + 500)  # a late repeat without pricing
    return facts


def test_the_charges_of_a_mixed_day_equal_the_hand_count_to_the_cent() -> None:
    report = build(mixed_day(), [], load_price_table(EXAMPLE))
    d, o = "2026-12-01", "2025-06-30"
    NA, ROW = "North America", "Rest of World"
    assert [
        (c.day, c.pricing_model, c.market, c.category, c.type, c.messages, c.billed, c.cost)
        for c in report.charges
    ] == [
        (o, "CBP", "India", "service", "regular", 2, 1, Decimal("0.004")),
        (o, "CBP", NA, "marketing", "regular", 2, 1, Decimal("0.025")),
        (o, "CBP", NA, "referral_conversion", "free", 1, 0, Decimal(0)),
        (d, "PMP", "Brazil", "referral_conversion", "free_entry_point", 1, 0, Decimal(0)),
        (d, "PMP", "India", "authentication_international", "regular", 1, 1, Decimal("0.028")),
        (d, "PMP", "India", "marketing", "regular", 1, 1, Decimal("0.0107")),
        (d, "PMP", "India", "utility", "regular", 1, 1, Decimal("0.0014")),
        (d, "PMP", NA, "marketing", "regular", 2, 2, Decimal("0.050")),
        (d, "PMP", NA, "marketing_lite", "regular", 1, 1, Decimal("0.025")),
        (d, "PMP", NA, "service", "free_customer_service", 1, 0, Decimal(0)),
        (d, "PMP", NA, "utility", "free_customer_service", 1, 0, Decimal(0)),
        (d, "PMP", ROW, "authentication", "regular", 1, 1, Decimal("0.0225")),
        (d, "PMP", ROW, "marketing", "regular", 1, 1, Decimal("0.0604")),
    ]
    # By hand: PMP 0.05 + 0.025 + 0.0014 + 0.028 + 0.0225 + 0.0604 + 0.0107 = 0.198;
    # CBP 0.025 + 0.004 = 0.029; together 0.227, billed as 0.23.
    assert sum(c.cost for c in report.charges if c.cost is not None) == Decimal("0.2270")
    assert report.total_cost == Decimal("0.23")


def test_without_a_price_the_billed_rows_have_no_cost_and_no_total() -> None:
    report = build(pmp("a1", US, "marketing", "regular", "delivered"), [])
    assert [(c.market, c.billed, c.cost) for c in report.charges] == [("", 1, None)]
    assert report.total_cost is None


@pytest.mark.parametrize(
    ("document", "error"),
    [
        (
            {"markets": {"all": ["*"]}, "PMP": {"all": {"promo": "0.01"}}},
            "t: [PMP.all]: unknown category 'promo' (authentication, ",
        ),
        ({"markets": {"all": ["*"]}, "PMP": {"mars": {}}}, "market 'mars' is not under"),
        ({"markets": {"all": ["*"]}, "PMP": {"all": {"utility": "cheap"}}}, "is not a price"),
        ({"markets": {"all": [1]}}, "give calling codes as strings"),
        ({"markets": {"all": ["*"]}}, "no prices"),
    ],
)
def test_a_bad_price_table_is_one_line_naming_the_fault(
    document: dict[str, object], error: str
) -> None:
    with pytest.raises(PriceTableError) as raised:
        parse_price_table(document, "t")
    assert error in str(raised.value)
    assert "\n" not in str(raised.value)
