"""The Cloud API's analytics data points, as pulled: a point pulled again replaces the one
stored (Meta's numbers for a recent period still move)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

import msgspec
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared.storage import schema
from wapipe.shared.storage.statements import insert_for


class Point(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    start: int
    end: int
    dimensions: dict[str, Any]
    metrics: dict[str, Any]

    @property
    def key(self) -> str:
        dims = json.dumps(self.dimensions, sort_keys=True, separators=(",", ":"))
        return f"{self.kind}:{self.start}:{self.end}:{dims}"


_encoder: Final = msgspec.json.Encoder(order="sorted")


async def store_points(
    engine: AsyncEngine, waba_id: str, points: Sequence[Point], now: float
) -> int:
    if not points:
        return 0
    table = schema.analytics_points
    rows = {
        f"{waba_id}:{p.key}": {
            "key": f"{waba_id}:{p.key}",
            "kind": p.kind,
            "waba_id": waba_id,
            "start_at": p.start,
            "end_at": p.end,
            "dimensions": _encoder.encode(p.dimensions).decode(),
            "metrics": _encoder.encode(p.metrics).decode(),
            "pulled_at": now,
        }
        for p in points
    }
    async with engine.begin() as connection:
        statement = insert_for(connection.dialect, table)
        statement = statement.on_conflict_do_update(
            index_elements=["key"],
            set_={
                "metrics": statement.excluded.metrics,
                "pulled_at": statement.excluded.pulled_at,
            },
        )
        await connection.execute(statement, [rows[key] for key in sorted(rows)])
    return len(rows)
