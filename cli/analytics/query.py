"""The Cloud API's analytics, asked for and read back as data points: pure.

    GET /{waba-id}?fields=analytics.start(T).end(T).granularity(DAY)             messages
    GET /{waba-id}?fields=conversation_analytics.start(T).end(T).granularity(DAILY)...
    GET /{waba-id}?fields=pricing_analytics.start(T).end(T).granularity(DAILY)...
    GET /{waba-id}/template_analytics?start=T&end=T&granularity=DAILY&template_ids=[..]

Each kind names its granularities in its own words (DAY for messages, DAILY for the others);
``--granularity day|month|half_hour`` is translated. The period is cli/period.py's
(``--since``, ``--until``).
"""

from __future__ import annotations

from typing import Any, Final

from wapipe.shared.storage.analytics import Point

KINDS: Final = ("messages", "conversations", "pricing", "templates")
FIELD: Final = {
    "messages": "analytics",
    "conversations": "conversation_analytics",
    "pricing": "pricing_analytics",
}
GRANULARITY: Final = {
    "messages": {"half_hour": "HALF_HOUR", "day": "DAY", "month": "MONTH"},
    "conversations": {"half_hour": "HALF_HOUR", "day": "DAILY", "month": "MONTHLY"},
    "pricing": {"half_hour": "HALF_HOUR", "day": "DAILY", "month": "MONTHLY"},
    "templates": {"day": "DAILY"},
}
TEMPLATE_IDS_MAX: Final = 10  # per template_analytics call
# What each point counts (the rest of it, but start and end, are its dimensions).
METRICS: Final = frozenset({"sent", "delivered", "read", "conversation", "volume", "cost"})


class PeriodError(ValueError):
    """The period asked for cannot be asked (empty, or a date that is none)."""


def granularity(kind: str, asked: str) -> str:
    words = GRANULARITY[kind]
    if asked not in words:
        raise PeriodError(f"--granularity: {kind} takes {', '.join(words)}")
    return words[asked]


def field_expression(kind: str, start: int, end: int, grain: str) -> str:
    return f"{FIELD[kind]}.start({start}).end({end}).granularity({grain})"


def points(kind: str, answer: dict[str, Any]) -> list[Point]:
    """The data points of an answer, whatever its nesting (docs/cloudapi/analytics.md)."""
    if kind == "messages":
        raw = (answer.get("analytics") or {}).get("data_points") or []
    else:
        holder = answer if kind == "templates" else answer.get(FIELD[kind]) or {}
        raw = [p for part in holder.get("data") or [] for p in part.get("data_points") or []]
    return [_point(kind, p) for p in raw]


def _point(kind: str, raw: dict[str, Any]) -> Point:
    metrics = {k: v for k, v in raw.items() if k in METRICS}
    if isinstance(metrics.get("cost"), list):  # templates: [{"type": "amount_spent", ...}]
        costs = {c.get("type"): c.get("value") for c in metrics["cost"]}
        metrics["cost"] = costs.get("amount_spent")
    dimensions = {k: v for k, v in raw.items() if k not in METRICS | {"start", "end", "clicked"}}
    return Point(
        kind=kind,
        start=int(raw["start"]),
        end=int(raw["end"]),
        dimensions=dimensions,
        metrics=metrics,
    )
