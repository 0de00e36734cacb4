"""Analytics computed from what the sandbox really sent, in Meta's shapes
(docs/cloudapi/analytics.md).

    GET /{waba-id}?fields=analytics.start(T).end(T).granularity(DAY)[.phone_numbers([..])]
    GET /{waba-id}?fields=conversation_analytics.start(T).end(T).granularity(DAILY)...
    GET /{waba-id}?fields=pricing_analytics.start(T).end(T).granularity(DAILY)...
    GET /{waba-id}/template_analytics?start=T&end=T&granularity=DAILY&template_ids=[..]

Pure: the Graph handlers pass the sent messages in. Costs use the sandbox's own price list
(``PRICE_USD``), per delivered billable message, as per-message pricing charges.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from wapipe.sandbox.errors import GraphError
from wapipe.sandbox.state import SentMessage

PRICE_USD: Final = {
    "marketing": 0.025,
    "marketing_lite": 0.025,
    "utility": 0.004,
    "authentication": 0.0135,
    "authentication_international": 0.03,
    "service": 0.0,
}
_SECONDS: Final = {"HALF_HOUR": 1800, "DAY": 86400, "DAILY": 86400}
_MONTHLY: Final = ("MONTH", "MONTHLY")
_CALL: Final = re.compile(r"\.?([a-z_]+)\(([^()]*)\)")


@dataclass(frozen=True)
class Query:
    field: str
    start: int
    end: int
    granularity: str
    phone_numbers: tuple[str, ...] = ()


def split_fields(fields: str) -> list[str]:
    """Top-level comma-separated parts of a ``fields`` parameter (commas in brackets stay)."""
    parts, depth, current = [], 0, ""
    for char in fields:
        depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    return [part.strip() for part in [*parts, current] if part.strip()]


def parse_query(part: str) -> Query:
    """``analytics.start(1).end(2).granularity(DAY)`` -> Query. Raises GraphError 100."""
    name, _, rest = part.partition(".")
    calls = {key: value for key, value in _CALL.findall("." + rest)}
    try:
        start, end = int(calls["start"]), int(calls["end"])
        granularity = calls["granularity"]
        numbers = tuple(json.loads(calls.get("phone_numbers", "[]")))
    except (KeyError, ValueError, TypeError) as exc:
        raise GraphError(
            100, f"{name} needs start(<unix>), end(<unix>) and granularity(...): {exc}"
        ) from None
    if granularity not in (*_SECONDS, *_MONTHLY) or end <= start:
        raise GraphError(100, f"{name}: unsupported granularity or an empty period")
    return Query(name, start, end, granularity, tuple(str(n) for n in numbers))


def buckets(start: int, end: int, granularity: str) -> list[tuple[int, int]]:
    """The periods [start, end) falls into, aligned as Meta aligns them (UTC)."""
    if granularity in _MONTHLY:
        periods, moment = (
            [],
            datetime.fromtimestamp(start, UTC).replace(
                day=1, hour=0, minute=0, second=0, microsecond=0
            ),
        )
        while moment.timestamp() < end:
            following = moment.replace(
                year=moment.year + moment.month // 12, month=moment.month % 12 + 1
            )
            periods.append((int(moment.timestamp()), int(following.timestamp())))
            moment = following
        return periods
    step = _SECONDS[granularity]
    first = start - start % step
    return [(t, t + step) for t in range(first, end, step)]


def _in(message: SentMessage, status: str, period: tuple[int, int]) -> bool:
    return any(s == status and period[0] <= at < period[1] for s, at in message.statuses)


def messaging(query: Query, sent: Iterable[SentMessage]) -> dict[str, Any]:
    chosen = [
        m for m in sent if not query.phone_numbers or m.display_phone_number in query.phone_numbers
    ]
    points = [
        {
            "start": a,
            "end": b,
            "sent": sum(_in(m, "sent", (a, b)) for m in chosen),
            "delivered": sum(_in(m, "delivered", (a, b)) for m in chosen),
        }
        for a, b in buckets(query.start, query.end, query.granularity)
    ]
    return {
        "phone_numbers": list(query.phone_numbers),
        "country_codes": [],
        "granularity": query.granularity,
        "data_points": points,
    }


def _per_category(
    query: Query, messages: list[SentMessage], status: str
) -> list[tuple[int, int, str, int]]:
    """(period start, end, category, how many messages got ``status`` in it), in order."""
    return [
        (a, b, category, count)
        for a, b in buckets(query.start, query.end, query.granularity)
        for category, count in sorted(
            Counter(m.category for m in messages if _in(m, status, (a, b))).items()
        )
    ]


def pricing(query: Query, sent: Iterable[SentMessage]) -> dict[str, Any]:
    """Volume and cost per pricing category and type, per period (a delivered billable message
    is charged; free ones are counted at no cost)."""
    messages = list(sent)
    points = []
    for a, b in buckets(query.start, query.end, query.granularity):
        counted = Counter(
            (m.category, m.pricing_type, m.billable)
            for m in messages
            if _in(m, "delivered", (a, b))
        )
        for (category, pricing_type, billable), count in sorted(counted.items()):
            points.append(
                {
                    "start": a,
                    "end": b,
                    "pricing_category": category.upper(),
                    "pricing_type": pricing_type.upper(),
                    "volume": count,
                    "cost": round(count * PRICE_USD.get(category, 0.0), 4) if billable else 0.0,
                }
            )
    return {"data": [{"data_points": points}]}


def conversations(query: Query, sent: Iterable[SentMessage]) -> dict[str, Any]:
    """Conversations opened per category, per period (a conversation opens with the first message
    to a customer in a category for 24 hours)."""
    opening = [m for m in sent if m.opened_conversation]
    points = [
        {
            "start": a,
            "end": b,
            "conversation_category": category.upper(),
            "conversation": count,
            "cost": round(count * PRICE_USD.get(category, 0.0), 4),
        }
        for a, b, category, count in _per_category(query, opening, "sent")
    ]
    return {"data": [{"data_points": points}]}


def templates(
    start: int, end: int, template_ids: list[str], sent: Iterable[SentMessage]
) -> dict[str, Any]:
    messages = [m for m in sent if m.template_id in template_ids]
    points = []
    for a, b in buckets(start, end, "DAILY"):
        for template_id in template_ids:
            mine = [m for m in messages if m.template_id == template_id]
            delivered = sum(_in(m, "delivered", (a, b)) for m in mine)
            price = PRICE_USD.get(mine[0].category, 0.0) if mine else 0.0
            points.append(
                {
                    "template_id": template_id,
                    "start": a,
                    "end": b,
                    "sent": sum(_in(m, "sent", (a, b)) for m in mine),
                    "delivered": delivered,
                    "read": sum(_in(m, "read", (a, b)) for m in mine),
                    "clicked": [],
                    "cost": [
                        {"type": "amount_spent", "value": round(delivered * price, 4)},
                        {"type": "cost_per_delivered", "value": price},
                    ],
                }
            )
    return {
        "data": [{"granularity": "DAILY", "data_points": points}],
        "paging": {"cursors": {"before": "", "after": ""}},
    }
