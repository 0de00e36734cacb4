"""What Meta charges for the messages wapipe sent, from their statuses and a price table the user
gives. Pure (docs/pricing-table.md has the table's format, docs/cloudapi/pricing.md the rules).

- Per-message pricing (``PMP``, since 2025-07-01): a message is charged once, when delivered
  (a ``delivered``, ``read`` or ``played`` status), if it is billable: ``pricing.billable``, or,
  where Meta leaves that deprecated flag out, ``pricing.type`` ``regular``. Free ones
  (``free_customer_service``, ``free_entry_point``) are counted, at no cost.
- Conversation-based pricing (``CBP``, before): a conversation is charged once, when one of its
  messages is delivered, if billable; its messages are counted.
- Price by the market of the customer's number (the table's markets, by calling-code prefix) and
  the category; its day is the UTC day of the first delivery.
"""

from __future__ import annotations

import tomllib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Final, NamedTuple

import msgspec

CATEGORIES: Final = frozenset(
    {
        "marketing",
        "marketing_lite",
        "utility",
        "authentication",
        "authentication_international",
        "service",
        "referral_conversion",
        "group_marketing",
        "group_utility",
        "group_service",
    }
)
MODELS: Final = ("PMP", "CBP")
DELIVERED: Final = frozenset({"delivered", "read", "played"})
ANY_MARKET: Final = "*"
CENT: Final = Decimal("0.01")


class PriceTableError(Exception):
    """A price table that cannot be used; its message is one line for the user."""


class PriceTable(msgspec.Struct, frozen=True):
    currency: str
    markets: dict[str, tuple[str, ...]]  # market -> calling-code prefixes ("*": any other)
    prices: dict[tuple[str, str, str], Decimal]  # (model, market, category) -> per unit

    def market_of(self, number: str | None) -> str:
        """The market whose longest prefix starts ``number``; ``*``'s market, else "?"."""
        best, best_length, fallback = "?", 0, "?"
        for market, prefixes in self.markets.items():
            for prefix in prefixes:
                if prefix == ANY_MARKET:
                    fallback = market
                elif number and number.startswith(prefix) and len(prefix) > best_length:
                    best, best_length = market, len(prefix)
        return best if best_length else fallback


def load_price_table(path: Path) -> PriceTable:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PriceTableError(f"price table {path}: {exc.strerror or 'cannot be read'}") from None
    except tomllib.TOMLDecodeError as exc:
        raise PriceTableError(f"price table {path}: not TOML ({exc})") from None
    return parse_price_table(document, str(path))


def parse_price_table(document: Mapping[str, Any], source: str) -> PriceTable:
    markets = _markets(document.get("markets"), source)
    prices: dict[tuple[str, str, str], Decimal] = {}
    for model in MODELS:
        for market, categories in _table(document.get(model, {}), f"{source}: [{model}]").items():
            where = f"{source}: [{model}.{market}]"
            if market not in markets:
                raise PriceTableError(f"{where}: market {market!r} is not under [markets]")
            for category, amount in _table(categories, where).items():
                if category not in CATEGORIES:
                    known = ", ".join(sorted(CATEGORIES))
                    raise PriceTableError(f"{where}: unknown category {category!r} ({known})")
                prices[(model, market, category)] = _amount(amount, f"{where} {category}")
    if not prices:
        raise PriceTableError(f"{source}: no prices (give [PMP.<market>] or [CBP.<market>])")
    return PriceTable(str(document.get("currency", "USD")), markets, prices)


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PriceTableError(f"{where}: must be a table")
    return value


def _markets(value: Any, source: str) -> dict[str, tuple[str, ...]]:
    markets = _table(value if value is not None else {}, f"{source}: [markets]")
    found = {}
    for market, prefixes in markets.items():
        if not isinstance(prefixes, list) or not all(
            isinstance(p, str) and (p == ANY_MARKET or p.isdigit()) for p in prefixes
        ):
            raise PriceTableError(
                f'{source}: [markets] {market}: give calling codes as strings, e.g. ["1"]'
            )
        found[market] = tuple(prefixes)
    return found


def _amount(value: Any, where: str) -> Decimal:
    try:
        amount = Decimal(str(value)) if isinstance(value, int | float | str) else None
    except InvalidOperation:
        amount = None
    if amount is None or not amount.is_finite() or amount < 0 or isinstance(value, bool):
        raise PriceTableError(f"{where}: {value!r} is not a price")
    return amount


class PricedStatus(msgspec.Struct, frozen=True):
    """What the charge needs of one stored status."""

    wamid: str
    phone_number_id: str
    status: str
    timestamp: int
    recipient_id: str | None = None
    conversation_id: str | None = None
    pricing_billable: bool | None = None
    pricing_model: str | None = None
    pricing_category: str | None = None
    pricing_type: str | None = None


class Charge(msgspec.Struct, frozen=True):
    day: str
    phone_number_id: str
    pricing_model: str
    market: str
    category: str
    type: str  # regular, free_customer_service, free_entry_point; CBP: regular or free
    messages: int  # delivered messages
    billed: int  # units charged: messages (PMP) or conversations (CBP)
    cost: Decimal | None  # billed x the table's price; None without a price


class _Row(NamedTuple):
    day: str
    phone_number_id: str
    pricing_model: str
    market: str
    category: str
    type: str


class _Message(msgspec.Struct):
    phone_number_id: str
    recipient_id: str | None = None
    delivered_at: int | None = None
    priced: PricedStatus | None = None  # the first status carrying pricing


def charges(statuses: Iterable[PricedStatus], table: PriceTable | None) -> list[Charge]:
    """One row per day, number, model, market, category and type, in that order."""
    rows: dict[_Row, list[int]] = defaultdict(lambda: [0, 0])
    billed_conversations: set[str] = set()
    for message in _messages(statuses).values():
        priced = message.priced
        if message.delivered_at is None or priced is None or priced.pricing_category is None:
            continue
        model = (priced.pricing_model or "PMP").upper()
        billable = _billable(priced)
        key = _Row(
            _day(message.delivered_at),
            message.phone_number_id,
            model,
            table.market_of(message.recipient_id) if table else "",
            priced.pricing_category,
            priced.pricing_type or ("regular" if billable else "free"),
        )
        rows[key][0] += 1
        if billable and model == "CBP":
            conversation = priced.conversation_id or priced.wamid
            billable = conversation not in billed_conversations
            billed_conversations.add(conversation)
        rows[key][1] += int(billable)
    return [
        Charge(*key, messages=m, billed=b, cost=_cost(table, key, b))
        for key, (m, b) in sorted(rows.items())
    ]


def total_cost(rows: Iterable[Charge]) -> Decimal | None:
    """The sum to the cent, or None if a billed row has no price."""
    total = Decimal(0)
    for row in rows:
        if row.cost is None:
            return None
        total += row.cost
    return total.quantize(CENT)


def _messages(statuses: Iterable[PricedStatus]) -> dict[str, _Message]:
    found: dict[str, _Message] = {}
    for status in sorted(statuses, key=lambda s: s.timestamp):
        message = found.setdefault(status.wamid, _Message(status.phone_number_id))
        message.recipient_id = message.recipient_id or status.recipient_id
        if status.status in DELIVERED and message.delivered_at is None:
            message.delivered_at = status.timestamp
        if message.priced is None and status.pricing_category is not None:
            message.priced = status
    return found


def _billable(status: PricedStatus) -> bool:
    if status.pricing_billable is not None:
        return status.pricing_billable
    return status.pricing_type == "regular"


def _cost(table: PriceTable | None, key: _Row, billed: int) -> Decimal | None:
    if billed == 0:
        return Decimal(0)
    if table is None:
        return None
    price = table.prices.get((key.pricing_model, key.market, key.category))
    return None if price is None else price * billed


def _day(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()
