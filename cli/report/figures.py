"""``wapipe report``'s numbers, from what wapipe stored: pure (the facts are passed in).

Per UTC day and per business number: messages sent, delivered, read and failed (each message
counted once a status, on the day of that status), failures by error code, send-to-delivered and
delivered-to-read latency percentiles (on the day of the earlier status; Meta's timestamps are
whole seconds), what Meta charges by pricing model, market, category and type
(cli/report/charges.py, priced from the user's price table), and inbound messages by type.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Final

import msgspec

from wapipe.cli.report.charges import Charge, PricedStatus, PriceTable, charges, total_cost
from wapipe.shared.storage.report import InboundFact, StatusFact

PERCENTILES: Final = (50, 90, 99)
STAGES: Final = (("sent", "delivered"), ("delivered", "read"))


class Delivery(msgspec.Struct, frozen=True):
    day: str
    phone_number_id: str
    sent: int
    delivered: int
    read: int
    failed: int


class Failure(msgspec.Struct, frozen=True):
    day: str
    phone_number_id: str
    error_code: int | None
    messages: int


class Latency(msgspec.Struct, frozen=True):
    day: str
    phone_number_id: str
    stage: str  # "sent->delivered", "delivered->read"
    messages: int
    p50_s: float
    p90_s: float
    p99_s: float


class Inbound(msgspec.Struct, frozen=True):
    day: str
    phone_number_id: str
    type: str
    messages: int


class Report(msgspec.Struct, frozen=True):
    deliveries: list[Delivery]
    failures: list[Failure]
    latencies: list[Latency]
    charges: list[Charge]
    total_cost: Decimal | None  # to the cent; None when a billed row has no price
    inbound: list[Inbound]


def day_of(timestamp: int) -> str:
    return datetime.fromtimestamp(timestamp, UTC).date().isoformat()


def percentile(values: Sequence[float], p: int) -> float:
    """Nearest rank: the smallest value with at least p % of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def build(
    statuses: Iterable[StatusFact],
    inbound: Iterable[InboundFact],
    prices: PriceTable | None = None,
) -> Report:
    statuses = list(statuses)
    firsts = _first_times(statuses)
    charged = charges((_priced(s) for s in statuses), prices)
    return Report(
        deliveries=_deliveries(firsts),
        failures=_failures(firsts),
        latencies=_latencies(firsts),
        charges=charged,
        total_cost=total_cost(charged),
        inbound=_inbound(inbound),
    )


def _priced(fact: StatusFact) -> PricedStatus:
    return PricedStatus(
        fact.wamid,
        fact.phone_number_id,
        fact.status,
        fact.timestamp,
        fact.recipient_id,
        fact.conversation_id,
        fact.pricing_billable,
        fact.pricing_model,
        fact.pricing_category,
        fact.pricing_type,
    )


class _Message(msgspec.Struct):
    phone_number_id: str
    at: dict[str, int]  # status -> its earliest timestamp
    codes: set[int | None]


def _first_times(statuses: Iterable[StatusFact]) -> dict[str, _Message]:
    found: dict[str, _Message] = {}
    for fact in statuses:
        message = found.setdefault(fact.wamid, _Message(fact.phone_number_id, {}, set()))
        if fact.status not in message.at or fact.timestamp < message.at[fact.status]:
            message.at[fact.status] = fact.timestamp
        if fact.status == "failed":
            message.codes.add(fact.error_code)
    return found


def _deliveries(messages: dict[str, _Message]) -> list[Delivery]:
    counts: dict[tuple[str, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for message in messages.values():
        for status, at in message.at.items():
            counts[(day_of(at), message.phone_number_id)][status] += 1
    return [
        Delivery(day, number, c["sent"], c["delivered"], c["read"], c["failed"])
        for (day, number), c in sorted(counts.items())
    ]


def _failures(messages: dict[str, _Message]) -> list[Failure]:
    counts: dict[tuple[str, str, int | None], int] = defaultdict(int)
    for message in messages.values():
        if "failed" in message.at:
            for code in message.codes:
                counts[(day_of(message.at["failed"]), message.phone_number_id, code)] += 1
    return [
        Failure(day, number, code, n)
        for (day, number, code), n in sorted(
            counts.items(), key=lambda kv: (kv[0][:2], kv[0][2] or 0)
        )
    ]


def _latencies(messages: dict[str, _Message]) -> list[Latency]:
    waits: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for message in messages.values():
        for before, after in STAGES:
            if before in message.at and after in message.at:
                key = (day_of(message.at[before]), message.phone_number_id, f"{before}->{after}")
                waits[key].append(float(max(0, message.at[after] - message.at[before])))
    return [
        Latency(day, number, stage, len(values), *(percentile(values, p) for p in PERCENTILES))
        for (day, number, stage), values in sorted(waits.items())
    ]


def _inbound(facts: Iterable[InboundFact]) -> list[Inbound]:
    counts: dict[tuple[str, str, str], int] = defaultdict(int)
    for fact in facts:
        counts[(day_of(fact.timestamp), fact.phone_number_id, fact.type)] += 1
    return [Inbound(day, number, kind, n) for (day, number, kind), n in sorted(counts.items())]
