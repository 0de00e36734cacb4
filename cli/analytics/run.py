"""``wapipe analytics``: the Cloud API's analytics for the WABA, pulled, stored, shown.

    wapipe analytics messages|conversations|pricing|templates --since 2026-12-01 --until 2026-12-03
                     [--granularity day|month|half_hour] [--template ID ...] [--json]

``templates`` asks for the ids given, or else for every template of the WABA, ten a call.
Every point is stored (``analytics_points``); the table shows one row a point.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

from wapipe.cli import output as console
from wapipe.cli.analytics.query import (
    TEMPLATE_IDS_MAX,
    PeriodError,
    field_expression,
    granularity,
    points,
)
from wapipe.cli.localsandbox import cloud_api_settings
from wapipe.cli.period import period, today_utc
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.cloudapi.management import all_templates
from wapipe.shared.settings import Settings
from wapipe.shared.storage.analytics import Point, store_points
from wapipe.shared.storage.database import open_database


def run_analytics(settings: Settings, args: argparse.Namespace) -> int:
    return console.run(f"analytics {args.kind}", lambda: _analytics(settings, args))


async def _analytics(settings: Settings, args: argparse.Namespace) -> int:
    asked = period(args.since, args.until, today_utc())
    start, end = asked.start, asked.end
    try:
        grain = granularity(args.kind, args.granularity)
    except PeriodError as exc:
        raise console.CommandError(str(exc)) from None
    command = f"analytics {args.kind}"
    settings = cloud_api_settings(settings, command, ("waba_id",), waba_id=args.waba)
    waba_id = settings.waba_id
    async with CloudApi(GraphConfig.from_settings(settings)) as api:
        if args.kind == "templates":
            found = await _templates(api, waba_id, args, start, end, grain)
        else:
            expression = field_expression(args.kind, start, end, grain)
            found = points(args.kind, await api.analytics(waba_id, expression))
    async with open_database(settings.database_url) as engine:
        await store_points(engine, waba_id, found, time.time())
    console.emit(args, found, _table(args.kind, waba_id, found))
    return 0


async def _templates(
    api: CloudApi, waba_id: str, args: argparse.Namespace, start: int, end: int, grain: str
) -> list[Point]:
    ids: list[str] = args.template
    if not ids:
        ids = [t.id for t in (await all_templates(api, waba_id))[0]]
    found: list[Point] = []
    with console.PullProgress(args, "template analytics") as progress:
        for first in range(0, len(ids), TEMPLATE_IDS_MAX):
            chunk = ids[first : first + TEMPLATE_IDS_MAX]
            params = {
                "start": str(start),
                "end": str(end),
                "granularity": grain,
                "template_ids": json.dumps(chunk),
                "metric_types": "SENT,DELIVERED,READ,COST",
            }
            found += points("templates", await api.template_analytics(waba_id, params))
            progress(first + len(chunk), len(ids))
    return found


def _table(kind: str, waba_id: str, found: list[Point]) -> Any:
    dimensions = sorted({k for p in found for k in p.dimensions if _shown(p.dimensions[k])})
    metrics = sorted({k for p in found for k in p.metrics})
    rows = [
        (
            datetime.fromtimestamp(p.start, UTC).strftime("%Y-%m-%d %H:%M"),
            *(_cell(p.dimensions.get(d)) for d in dimensions),
            *(p.metrics.get(m) for m in metrics),
        )
        for p in found
    ]
    title = f"{kind} analytics of WABA {waba_id}: {len(found)} points (UTC)"
    return console.table(title, ("from", *dimensions, *metrics), rows)


def _shown(value: Any) -> bool:
    return value not in (None, [], "")


def _cell(value: Any) -> Any:
    return ", ".join(map(str, value)) if isinstance(value, list) else value
