"""``wapipe report`` on a fixture of stored events: every number equals a hand count, and the
chart is a real picture."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from PIL import Image
from sqlalchemy import insert

from tests.integration.account_support import Ran, wapipe
from wapipe.shared.storage import schema
from wapipe.shared.storage.database import open_database

D1 = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp())
D2 = D1 + 86400
D3 = D2 + 86400

# (wamid, number, status, at, error code, conversation, category)
STATUSES = [
    ("m1", "111", "sent", D1 + 100, None, "c1", "utility"),
    ("m1", "111", "delivered", D1 + 102, None, "c1", "utility"),
    ("m1", "111", "read", D1 + 110, None, None, None),
    ("m2", "111", "sent", D1 + 200, None, "c1", "utility"),
    ("m2", "111", "delivered", D1 + 205, None, "c1", "utility"),
    ("m3", "111", "sent", D1 + 300, None, "c2", "marketing"),
    ("m3", "111", "failed", D1 + 301, 131026, None, None),
    ("m4", "111", "failed", D1 + 400, 131047, None, None),
    ("m5", "222", "sent", D1 + 500, None, "c3", "marketing"),
    ("m5", "222", "delivered", D2 + 10, None, "c3", "marketing"),
    ("m6", "222", "failed", D2 + 20, 131026, None, None),
    ("m6", "222", "failed", D2 + 21, 131000, None, None),
    ("m7", "222", "sent", D3 + 5, None, "c4", "utility"),  # after the period
]
# (wamid, direction, number, type, at)
MESSAGES = [
    ("i1", "in", "111", "text", D1 + 1),
    ("i2", "in", "111", "text", D1 + 2),
    ("i3", "in", "111", "image", D1 + 3),
    ("i4", "in", "222", "text", D2 + 4),
    ("i5", "in", "222", "text", D3 + 4),  # after the period
    ("m1", "out", "111", "text", D1 + 100),
]


async def store_fixture(database_url: str) -> None:
    async with open_database(database_url) as engine, engine.begin() as connection:
        await connection.execute(
            insert(schema.statuses),
            [
                {
                    "key": f"{wamid}:{status}:{code or ''}",
                    "wamid": wamid,
                    "status": status,
                    "timestamp": at,
                    "phone_number_id": number,
                    "error_code": code,
                    "conversation_id": conversation,
                    "pricing_category": category,
                    "pricing_billable": True if category else None,
                    "pricing_model": "PMP" if category else None,
                    "pricing_type": "regular" if category else None,
                    "recipient_id": "16315551181",
                    "received_at": at,
                    "stored_at": at,
                    "payload": "{}",
                }
                for wamid, number, status, at, code, conversation, category in STATUSES
            ],
        )
        await connection.execute(
            insert(schema.messages),
            [
                {"wamid": w, "direction": d, "phone_number_id": n, "type": t, "timestamp": at}
                for w, d, n, t, at in MESSAGES
            ],
        )


async def report(database_url: str, *more: str) -> Ran:
    env = {"WAPIPE_DATABASE_URL": database_url, "WAPIPE_LOG_LEVEL": "WARNING"}
    return await wapipe(env, "report", "--since", "2026-12-01", "--until", "2026-12-02", *more)


def rows(found: list[dict[str, Any]], *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in found]


async def test_the_reports_numbers_equal_a_hand_count(database_url: str, tmp_path: Path) -> None:
    await store_fixture(database_url)
    ran = await report(database_url, "--price", "utility=0.004", "--no-chart", "--json")
    assert ran.code == 0, ran.err
    found = ran.json()
    day1, day2 = "2026-12-01", "2026-12-02"
    number = ("day", "phone_number_id")
    assert rows(found["deliveries"], *number, "sent", "delivered", "read", "failed") == [
        (day1, "111", 3, 2, 1, 2),
        (day1, "222", 1, 0, 0, 0),
        (day2, "222", 0, 1, 0, 1),
    ]
    assert rows(found["failures"], *number, "error_code", "messages") == [
        (day1, "111", 131026, 1),
        (day1, "111", 131047, 1),
        (day2, "222", 131000, 1),
        (day2, "222", 131026, 1),
    ]
    assert rows(found["latencies"], *number, "stage", "messages", "p50_s", "p90_s", "p99_s") == [
        (day1, "111", "delivered->read", 1, 8.0, 8.0, 8.0),
        (day1, "111", "sent->delivered", 2, 2.0, 5.0, 5.0),
        (day1, "222", "sent->delivered", 1, 85910.0, 85910.0, 85910.0),
    ]
    # Charged once each when delivered: m3 failed, m5 was delivered on day 2.
    charged = ("market", "category", "type", "messages", "billed", "cost")
    assert rows(found["charges"], *number, *charged) == [
        (day1, "111", "all", "utility", "regular", 2, 2, "0.008"),
        (day2, "222", "all", "marketing", "regular", 1, 1, None),
    ]
    assert found["total_cost"] is None  # marketing has no price
    assert rows(found["inbound"], *number, "type", "messages") == [
        (day1, "111", "image", 1),
        (day1, "111", "text", 2),
        (day2, "222", "text", 1),
    ]


async def test_a_price_table_file_prices_by_market(database_url: str) -> None:
    await store_fixture(database_url)
    example = Path(__file__).parents[2] / "examples" / "prices.toml"
    ran = await report(database_url, "--prices", str(example), "--no-chart", "--json")
    assert ran.code == 0, ran.err
    found = ran.json()
    assert rows(found["charges"], "market", "category", "billed", "cost") == [
        ("North America", "utility", 2, "0.008"),
        ("North America", "marketing", 1, "0.025"),
    ]
    assert found["total_cost"] == "0.03"


async def test_a_price_table_with_an_unknown_category_is_one_line(
    database_url: str, tmp_path: Path
) -> None:
    table = tmp_path / "prices.toml"
    table.write_text('[markets]\nall = ["*"]\n[PMP.all]\npromo = "0.01"\n')
    ran = await report(database_url, "--prices", str(table), "--no-chart")
    assert ran.code != 0
    assert len(ran.err.strip().splitlines()) == 1
    assert "unknown category 'promo'" in ran.err


async def test_the_chart_is_written_and_not_blank(database_url: str, tmp_path: Path) -> None:
    await store_fixture(database_url)
    chart = tmp_path / "report.png"
    ran = await report(database_url, "--out", str(chart))
    assert ran.code == 0, ran.err
    assert "Delivery" in ran.out
    assert str(chart) in ran.out
    with Image.open(chart) as image:
        assert image.format == "PNG"
        assert image.size == (1000, 600)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
    assert colours is not None
    assert len(colours) > 10  # bars, lines and text, not one flat colour
    background = max(colours)[0]
    assert background < 1000 * 600 * 0.97  # some of it is drawn


async def test_an_empty_date_range_is_one_line(database_url: str) -> None:
    env = {"WAPIPE_DATABASE_URL": database_url}
    ran = await wapipe(env, "report", "--since", "2026-12-02", "--until", "2026-12-01")
    assert (ran.code, ran.err) == (
        2,
        "wapipe report: --since 2026-12-02 --until 2026-12-01: an empty period\n",
    )


async def test_statuses_stored_before_the_pricing_columns_are_charged_from_their_payload(
    database_url: str,
) -> None:
    """A status stored before migration 0005 has its pricing only in its payload: a CBP one
    from June 2025 here, charged once for its conversation."""
    june = int(datetime(2025, 6, 30, tzinfo=UTC).timestamp())
    pricing = '{"pricing": {"billable": true, "pricing_model": "CBP", "category": "utility"}}'
    async with open_database(database_url) as engine, engine.begin() as connection:
        await connection.execute(
            insert(schema.statuses),
            [
                {
                    "key": f"{wamid}:delivered:",
                    "wamid": wamid,
                    "status": "delivered",
                    "timestamp": june + i,
                    "phone_number_id": "111",
                    "recipient_id": "16315551181",
                    "conversation_id": "conv-1",
                    "pricing_category": "utility",
                    "received_at": june,
                    "stored_at": june,
                    "payload": pricing,
                }
                for i, wamid in enumerate(("old-1", "old-2"))
            ],
        )
    env = {"WAPIPE_DATABASE_URL": database_url, "WAPIPE_LOG_LEVEL": "WARNING"}
    ran = await wapipe(env, "report", "--since", "2025-06-30", "--until", "2025-06-30", "--price",
                       "utility=0.015", "--no-chart", "--json")  # fmt: skip
    assert ran.code == 0, ran.err
    charged = ("pricing_model", "category", "messages", "billed", "cost")
    assert rows(ran.json()["charges"], *charged) == [("CBP", "utility", 2, 1, "0.015")]
