"""``wapipe sandbox customer ...`` and ``wapipe sandbox load ...``: clients of a running sandbox
and of a webhook receiver, for people at a terminal and for scripts."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp

from sandbox.load import Target, parse_mix, run_load


def parse_fields(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that is JSON (a number, an object, true) is taken as such."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"{pair!r}: give key=value")
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return fields


async def customer_send(sandbox_url: str, wa_id: str, kind: str, fields: dict[str, Any]) -> int:
    url = f"{sandbox_url.rstrip('/')}/_sandbox/customers/{wa_id}/messages"
    return await _post(url, {"type": kind, **fields})


async def customer_add(sandbox_url: str, wa_id: str, name: str, stopped_marketing: bool) -> int:
    url = f"{sandbox_url.rstrip('/')}/_sandbox/customers"
    return await _post(url, {"wa_id": wa_id, "name": name, "stopped_marketing": stopped_marketing})


async def _post(url: str, body: dict[str, Any]) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        text = await response.text()
    print(text)
    return 0 if response.status == 200 else 1


def load(
    webhook_url: str, secret: str, rate_per_s: float, duration_s: float, mix: str, seed: int
) -> int:
    report = asyncio.run(
        run_load(Target(webhook_url, secret), rate_per_s, duration_s, parse_mix(mix), seed=seed)
    )
    json.dump(report.summary(), sys.stdout, indent=2)
    print()
    return 0
