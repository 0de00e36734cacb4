"""A paced load for tests/bench/ingress.py's ``--rate``: POSTs at a steady rate, not as fast as
the server answers (what wrk does), so a server is measured at the low rates of a quiet day.

    python -m tests.bench.pace URL BODY_FILE SIGNATURE --rate 50 --duration 20
                               [--connections 4] [--chain 1]

Request ``n`` starts at ``n / rate`` s, in a task of its own (a slow answer does not hold the
next back), over at most ``--connections`` kept-alive connections. With ``--chain K`` requests
come K at a time, each posted once the one before is answered: what the sandbox does with one
message's statuses (sent, delivered, read), so the next arrives a round trip after the last.
Prints one JSON line: the requests, the errors (non-2xx, refused, cut), the rate kept and the
p50/p99 latency in ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import aiohttp

from tests.bench.report import positive_float, positive_int


async def pace(
    url: str,
    body: bytes,
    signature: str,
    rate: float,
    duration_s: float,
    connections: int,
    chain: int = 1,
) -> dict[str, float]:
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one() -> None:
            nonlocal errors
            started = time.perf_counter()
            try:
                async with session.post(url, data=body) as response:
                    await response.read()
                    if response.status >= 300:
                        errors += 1
                        return
            except aiohttp.ClientError:
                errors += 1
                return
            latencies.append(time.perf_counter() - started)

        async def chained() -> None:
            for _ in range(chain):
                await one()

        loop = asyncio.get_running_loop()
        started = loop.time()
        chains = int(rate * duration_s / chain)
        total = chains * chain
        tasks = []
        for number in range(chains):
            delay = started + number * chain / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(chained()))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - started
    latencies.sort()
    return {
        "requests": total,
        "errors": errors,
        "rps": total / elapsed,
        "p50_ms": 1000 * statistics.median(latencies) if latencies else 0.0,
        "p99_ms": 1000 * latencies[int(0.99 * (len(latencies) - 1))] if latencies else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("body_file", type=Path)
    parser.add_argument("signature")
    parser.add_argument("--rate", type=positive_float, required=True, help="requests a second")
    parser.add_argument("--duration", type=positive_float, required=True, help="seconds")
    parser.add_argument("--connections", type=positive_int, default=4)
    parser.add_argument("--chain", type=positive_int, default=1, help="requests one after another")
    args = parser.parse_args()
    body = args.body_file.read_bytes()
    outcome = asyncio.run(
        pace(
            args.url,
            body,
            args.signature,
            args.rate,
            args.duration,
            args.connections,
            args.chain,
        )
    )
    print(json.dumps(outcome))


if __name__ == "__main__":
    main()
