"""Load mode: signed webhooks at a steady rate, of a chosen mix, for a set time.

    wapipe sandbox load --rate 3000 --duration 30 --mix status=0.75,text=0.25

Open loop, as Meta sends: webhook i leaves at ``start + i / rate`` whatever the receiver does (up
to ``max_in_flight`` unanswered), so a slow receiver shows as latency and a backlog, not as a
lower offered rate. Each body is one status or one inbound message with fresh ids, signed with
the app secret; the report says what was sent, how the receiver answered and how fast.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp

from wapipe.sandbox.customers import inbound_message, inbound_value
from wapipe.sandbox.state import new_wamid
from wapipe.sandbox.webhooks import Change, encode_like_meta, envelope
from wapipe.shared.signature import HEADER, sign

STATUS_KINDS: Final = ("sent", "delivered", "read")
MESSAGE_KINDS: Final = ("text", "location", "reaction", "button")  # no media: no bytes behind


@dataclass(frozen=True)
class Target:
    url: str
    secret: str
    waba_id: str = "109876543210987"
    phone_number_id: str = "118765432109876"
    display_phone_number: str = "15550101234"


@dataclass
class LoadReport:
    offered: int = 0
    answered: Counter[str] = field(default_factory=Counter)  # HTTP status or error name
    by_kind: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies_s)

        def percentile(p: float) -> float:
            return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0

        return {
            "offered": self.offered,
            "answered": dict(self.answered),
            "by_kind": dict(self.by_kind),
            "elapsed_s": round(self.elapsed_s, 3),
            "rate_per_s": round(self.offered / self.elapsed_s, 1) if self.elapsed_s else 0,
            "ok_per_s": round(self.answered["200"] / self.elapsed_s, 1) if self.elapsed_s else 0,
            "latency_ms": {
                "p50": round(percentile(0.5), 2),
                "p99": round(percentile(0.99), 2),
                "mean": round(statistics.fmean(ordered) * 1000, 2) if ordered else 0,
            },
        }


def parse_mix(text: str) -> dict[str, float]:
    """``status=0.75,text=0.25`` -> weights; kinds are statuses (sent, delivered, read, or
    ``status`` for all three) and inbound message types."""
    mix: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, weight = part.partition("=")
        known = {"status", *STATUS_KINDS, *MESSAGE_KINDS}
        if kind not in known:
            raise ValueError(f"unknown kind {kind!r}: use {', '.join(sorted(known))}")
        mix[kind] = float(weight or 1)
    if not mix or sum(mix.values()) <= 0:
        raise ValueError("the mix needs at least one kind with a positive weight")
    return mix


def webhook_body(kind: str, target: Target, number: int, now: float) -> bytes:
    """One webhook body of the kind, with ids unique to ``number``."""
    wa_id = f"1555{number % 10_000_000:07d}"
    value: dict[str, Any]
    if kind in STATUS_KINDS or kind == "status":
        status = kind if kind != "status" else STATUS_KINDS[number % 3]
        value = {
            "messaging_product": "whatsapp",
            "metadata": {
                "display_phone_number": target.display_phone_number,
                "phone_number_id": target.phone_number_id,
            },
            "statuses": [
                {
                    "id": new_wamid(),
                    "status": status,
                    "timestamp": str(int(now)),
                    "recipient_id": wa_id,
                }
            ],
        }
    else:
        spec = {
            "text": {"body": f"load {number}"},
            "reaction": {"emoji": "👍"},
            "button": {"payload": "YES", "text": "Yes"},
        }.get(kind, {})
        message = inbound_message(
            kind, sender=wa_id, wamid=new_wamid(), timestamp=int(now), spec=spec
        )
        value = inbound_value(
            display_phone_number=target.display_phone_number,
            phone_number_id=target.phone_number_id,
            customer_name="Load",
            wa_id=wa_id,
            message=message,
        )
    return encode_like_meta(envelope([Change(target.waba_id, "messages", value)]))


async def run_load(
    target: Target,
    rate_per_s: float,
    duration_s: float,
    mix: dict[str, float],
    *,
    seed: int = 0,
    max_in_flight: int = 512,
) -> LoadReport:
    rng = random.Random(seed)  # noqa: S311 - a mix, not a secret
    kinds, weights = list(mix), list(mix.values())
    report = LoadReport()
    total = int(rate_per_s * duration_s)
    slots = asyncio.Semaphore(max_in_flight)
    connector = aiohttp.TCPConnector(limit=max_in_flight)
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks: set[asyncio.Task[None]] = set()
        start = loop.time()
        for number in itertools.count():
            if number >= total:
                break
            due = start + number / rate_per_s
            if (wait_s := due - loop.time()) > 0:
                await asyncio.sleep(wait_s)
            kind = rng.choices(kinds, weights)[0]
            body = webhook_body(kind, target, number, time.time())
            await slots.acquire()
            task = asyncio.create_task(_post(session, target, body, report, slots, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            report.offered += 1
            report.by_kind[kind] += 1
        await asyncio.gather(*tasks)
        report.elapsed_s = loop.time() - start
    return report


async def _post(
    session: aiohttp.ClientSession,
    target: Target,
    body: bytes,
    report: LoadReport,
    slots: asyncio.Semaphore,
    due: float,
) -> None:
    """Latency counts from when the webhook was due, so waiting for a free slot shows too."""
    headers = {"Content-Type": "application/json", HEADER: sign(target.secret.encode(), body)}
    loop = asyncio.get_running_loop()
    try:
        async with session.post(target.url, data=body, headers=headers) as response:
            await response.read()
            report.answered[str(response.status)] += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        report.answered[type(exc).__name__] += 1
    finally:
        report.latencies_s.append(loop.time() - due)
        slots.release()
