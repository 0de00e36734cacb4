"""``wapipe numbers``: the WABA's phone numbers.

    wapipe numbers list [--json]          the WABA's numbers: quality, tier, throughput, and
    wapipe numbers show ID [--json]       the sender's pace and pause state for each

The sender's state comes from its metrics endpoint (``--sender-metrics``; by default the
sender's own port on ``WAPIPE_METRICS_HOST``); a sender that cannot be reached shows as such.
"""

from __future__ import annotations

import argparse
from typing import Any, Final, NamedTuple

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from wapipe.cli import output as console
from wapipe.cli.localsandbox import cloud_api_settings
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.cloudapi.management import phone_number, phone_numbers
from wapipe.shared.cloudapi.nodes import PhoneNumberNode
from wapipe.shared.settings import Settings, number_rates

SENDER_METRICS_PORT: Final = 9105  # workers/sender/service.py METRICS_PORT
NUMBER_COLUMNS: Final = (
    "id", "number", "verified name", "quality", "limit tier", "throughput", "name status",
    "sender pace /s", "sender",
)  # fmt: skip


def run_numbers(settings: Settings, args: argparse.Namespace) -> int:
    return console.run(f"numbers {args.action}", lambda: _numbers(settings, args))


async def _numbers(settings: Settings, args: argparse.Namespace) -> int:
    command = f"numbers {args.action}"
    if args.action == "list":
        settings = cloud_api_settings(settings, command, ("waba_id",), waba_id=args.waba)
    else:
        settings = cloud_api_settings(
            settings, command, ("phone_number_id",), phone_number_id=args.phone_number_id
        )
    async with CloudApi(GraphConfig.from_settings(settings)) as api:
        if args.action == "list":
            found = await phone_numbers(api, settings.waba_id)
        else:
            found = [await phone_number(api, settings.phone_number_id)]
    port = settings.metrics_port or SENDER_METRICS_PORT
    url = args.sender_metrics or f"http://{settings.metrics_host}:{port}/metrics"
    sender = await sender_state(url)
    rates = number_rates(settings)
    rows = [number_row(n, rates.get(n.id, settings.sender_rate_per_s), sender) for n in found]
    value = [dict(zip(NUMBER_COLUMNS, row, strict=True)) for row in rows]
    console.emit(args, value, console.table("Phone numbers", NUMBER_COLUMNS, rows))
    return 0


def number_row(
    number: PhoneNumberNode, rate_per_s: float, sender: SenderState | None
) -> tuple[Any, ...]:
    """``rate_per_s``: the number's configured pace, shown while the sender has none live."""
    state = "not reachable" if sender is None else _state(sender.paused.get(number.id, False))
    pace = sender.pace.get(number.id, rate_per_s) if sender is not None else rate_per_s
    throughput = number.throughput.level if number.throughput is not None else None
    return (
        number.id,
        number.display_phone_number,
        number.verified_name,
        number.quality_rating,
        number.limit_tier,
        throughput,
        number.name_status,
        pace,
        state,
    )


def _state(paused: bool) -> str:
    return "paused" if paused else "sending"


class SenderState(NamedTuple):
    """What the sender's metrics say of each number it holds (by phone number id)."""

    paused: dict[str, bool]  # its ``wapipe_sender_paused`` gauge
    pace: dict[str, float]  # its ``wapipe_sender_pace``: the limit, or less after a 130429


async def sender_state(url: str) -> SenderState | None:
    """The sender's view of its numbers; None when the sender cannot be reached."""
    try:
        timeout = aiohttp.ClientTimeout(total=2)
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as answer:
            if answer.status != 200:
                return None
            text = await answer.text()
    except (aiohttp.ClientError, TimeoutError):
        return None
    return parse_sender(text)


def parse_sender(text: str) -> SenderState:
    by_gauge: dict[str, dict[str, float]] = {"wapipe_sender_paused": {}, "wapipe_sender_pace": {}}
    for family in text_string_to_metric_families(text):
        found = by_gauge.get(family.name)
        if found is None:
            continue
        for sample in family.samples:
            if "phone_number_id" in sample.labels:
                found[sample.labels["phone_number_id"]] = sample.value
    paused = {number: value >= 1 for number, value in by_gauge["wapipe_sender_paused"].items()}
    return SenderState(paused, by_gauge["wapipe_sender_pace"])
