"""The anchors of the cost table (tests/bench/cost.py): the same work done straightforwardly.

Each runs in a process of its own, whose CPU time is read over its measured stretch only:

    consume  a bare aio-pika consumer (asyncio's own loop): each event decoded, each acked; the
             anchor of the status and message workers (what the broker and decoding cost)
    send     a bare aiohttp client posting text sends to the sandbox at a steady rate, each
             answered 200: the anchor of the sender
    media    a bare aiohttp loop looking each media id up and downloading its bytes (dropped) at a
             steady rate: the anchor of the media worker

The ingress's anchors are servers (tests/bench/servers.py: ``bare`` and ``naive``), driven by
the sandbox's load mode from cost.py.

    python -m tests.bench.cost_anchors consume --amqp-url URL --queue Q --events N
    python -m tests.bench.cost_anchors send --url SANDBOX --number ID --rate R --duration S
    python -m tests.bench.cost_anchors media --url SANDBOX --rate R --ids ID,ID,...

Each prints one JSON line: ``{"events": n, "cpu_s": seconds}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import uuid
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import aio_pika
import aiohttp

from tests.bench.ingress import cpu_seconds, wait_ready
from tests.bench.media_worker import send_images
from tests.bench.sender import sandbox, sink
from tests.helpers import Broker, free_port, status_webhook
from tests.integration.worker_support import as_messages
from wapipe.ingress.split import split_body
from wapipe.sandbox.load import Target, parse_mix, run_load
from wapipe.shared import topology
from wapipe.shared.schemas.events import event_decoder

TOKEN = "bench-token"
SECRET = "bench-app-secret"
GRAPH_VERSION = "v24.0"
ANCHOR_S = 10.0  # seconds each anchor runs
IMAGE_BYTES = 100 * 1024


async def consume(amqp_url: str, queue_name: str, events: int) -> dict[str, float]:
    """Take ``events`` events, decoding and acking each; CPU from the first to the last."""
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=100)
        queue = await channel.declare_queue(queue_name, passive=True)
        seen, cpu_from = 0, 0.0
        async with queue.iterator() as messages:
            async for message in messages:
                if seen == 0:
                    cpu_from = time.process_time()
                event_decoder.decode(message.body)
                await message.ack()
                seen += 1
                if seen == events:
                    break
        return {"events": seen, "cpu_s": time.process_time() - cpu_from}


async def steady(rate: float, count: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Call ``one(i)`` at ``start + i / rate`` (open loop) for i < count; the CPU it took."""
    cpu_from = time.process_time()
    started = time.monotonic()
    tasks = []
    for number in range(count):
        delay_s = started + number / rate - time.monotonic()
        if delay_s > 0:
            await asyncio.sleep(delay_s)  # the pace is the point
        tasks.append(asyncio.ensure_future(one(number)))
    await asyncio.gather(*tasks)
    return time.process_time() - cpu_from


async def send(url: str, number: str, rate: float, duration_s: float) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(count: int) -> None:
            body = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": f"1666{count:07d}",
                "type": "text",
                "text": {"body": f"anchor {count}"},
            }
            async with session.post(f"{url}/{GRAPH_VERSION}/{number}/messages", json=body) as r:
                if r.status != 200:
                    raise RuntimeError(f"answered {r.status}: {await r.text()}")
                await r.read()

        count = int(rate * duration_s)
        return {"events": count, "cpu_s": await steady(rate, count, one)}


async def media(url: str, rate: float, media_ids: list[str]) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=headers) as session:

        async def one(count: int) -> None:
            async with session.get(f"{url}/{GRAPH_VERSION}/{media_ids[count]}") as response:
                info: dict[str, Any] = await response.json()
            async with session.get(info["url"]) as response:
                async for _ in response.content.iter_chunked(256 * 1024):
                    pass

        return {"events": len(media_ids), "cpu_s": await steady(rate, len(media_ids), one)}


def asked_again(call: Callable[[], object], tries: int = 5) -> None:
    """A management API call, asked again when it times out (on a machine loaded by others, it
    does at times)."""
    for attempt in range(tries):
        try:
            call()
            return
        except OSError:  # TimeoutError among them
            if attempt == tries - 1:
                raise
            time.sleep(2)


@contextlib.contextmanager
def vhost(broker: Broker) -> Iterator[str]:
    """A fresh vhost, deleted afterwards (tests.helpers.Broker.vhost, with patience)."""
    name = f"wapipe-cost-{uuid.uuid4().hex[:8]}"
    asked_again(lambda: broker.api("PUT", f"/vhosts/{name}"))
    try:
        permissions = {"configure": ".*", "write": ".*", "read": ".*"}
        user = broker.amqp_url.user
        asked_again(lambda: broker.api("PUT", f"/permissions/{name}/{user}", permissions))
        yield str(broker.amqp_url.with_path("/" + name))
    finally:
        asked_again(lambda: gone(broker, name))


def gone(broker: Broker, name: str) -> None:
    """Delete a vhost; one already gone (an earlier try that timed out, yet did it) is fine."""
    try:
        broker.api("DELETE", f"/vhosts/{name}")
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise


# --- driving them (from cost.py) -------------------------------------------------------------


async def ingress_anchor(broker: Broker, kind: str, rate: float, status_share: float) -> float:
    """CPU ms per 200 of a reference server (servers.py) at ``rate`` webhooks/s."""
    with vhost(broker) as amqp_url:
        await topology.declare_at(amqp_url)
        port = free_port()
        command = [sys.executable, "-m", "tests.bench.servers", kind, "--port", str(port)]
        command += ["--amqp-url", amqp_url, "--secret", SECRET]
        process = subprocess.Popen(command)  # noqa: ASYNC220 - a benchmark's child
        try:
            wait_ready(port)
            target = Target(f"http://127.0.0.1:{port}/webhook", SECRET)
            mix = parse_mix(f"status={status_share},text={max(1e-6, 1 - status_share)}")
            cpu_from = cpu_seconds(process.pid)
            report = await run_load(target, rate, ANCHOR_S, mix, seed=1)
            cpu_s = cpu_seconds(process.pid) - cpu_from
        finally:
            process.terminate()
            process.wait(timeout=20)
    return cpu_s / max(1, report.answered.get("200", 0)) * 1000


async def consumer_anchor(broker: Broker, rate: float) -> float:
    """CPU ms per event of a bare consumer taking events published at ``rate``/s."""
    count = max(50, int(rate * ANCHOR_S))
    bodies = [status_webhook(f"wamid.COST{n}", "delivered") for n in range(count)]
    messages = as_messages([e for body in bodies for e in split_body(body, time.time())])
    with vhost(broker) as amqp_url:
        await topology.declare_at(amqp_url)
        command = [sys.executable, "-m", "tests.bench.cost_anchors", "consume"]
        command += ["--amqp-url", amqp_url, "--queue", topology.STATUS_QUEUE]
        command += ["--events", str(len(messages))]
        child = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
        await paced_publish(amqp_url, messages, rate)
        output, _ = await child.communicate()
    result = json.loads(output)
    return float(result["cpu_s"]) / float(result["events"]) * 1000


async def paced_publish(amqp_url: str, messages: list[Any], rate: float) -> None:
    connection = await aio_pika.connect(amqp_url)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(topology.EVENTS_EXCHANGE, ensure=False)
        started = time.monotonic()
        for number, (key, message) in enumerate(messages):
            delay_s = started + number / rate - time.monotonic()
            if delay_s > 0:
                await asyncio.sleep(delay_s)  # the pace is the point
            await exchange.publish(message, routing_key=key)


async def client_anchors(send_rate: float, media_rate: float) -> dict[str, float]:
    """CPU ms per send of a bare client, and per image of a bare look-up + download loop,
    against a sandbox of their own (its webhooks to a sink)."""
    async with sink() as webhook_url, sandbox(1000, 1000, webhook_url) as (url, number):
        base = [sys.executable, "-m", "tests.bench.cost_anchors"]
        pace = ["--rate", str(max(1.0, send_rate)), "--duration", str(ANCHOR_S)]
        sends = await child_json([*base, "send", "--url", url, "--number", number, *pace])
        ids = await send_images(url, max(5, int(media_rate * ANCHOR_S)), IMAGE_BYTES)
        pace = ["--rate", str(max(0.5, media_rate)), "--ids", ",".join(ids)]
        images = await child_json([*base, "media", "--url", url, *pace])
    return {
        "sender": sends["cpu_s"] / sends["events"] * 1000,
        "media": images["cpu_s"] / images["events"] * 1000,
    }


async def child_json(command: list[str]) -> dict[str, float]:
    child = await asyncio.create_subprocess_exec(*command, stdout=subprocess.PIPE)
    output, _ = await child.communicate()
    if child.returncode:
        raise RuntimeError(f"{command[3]} anchor exited with {child.returncode}")
    result: dict[str, float] = json.loads(output)
    return result


async def anchors(
    broker: Broker, rate: dict[str, float], status_share: float
) -> dict[str, dict[str, float]]:
    """Each anchor's CPU ms per event at the rates the pipeline's services saw."""
    rate = {name: max(1.0, value) for name, value in rate.items()}
    clients = await client_anchors(rate["sender"], rate["media"])
    return {
        "ingress": {
            "bare aiohttp server": await ingress_anchor(broker, "bare", rate["ingress"], 1.0),
            "straightforward aio-pika handler": await ingress_anchor(
                broker, "naive", rate["ingress"], status_share
            ),
        },
        "status": {"bare aio-pika consumer": await consumer_anchor(broker, rate["status"])},
        "message": {"bare aio-pika consumer": await consumer_anchor(broker, rate["message"])},
        "media": {"bare look-up + download loop": clients["media"]},
        "sender": {"bare aiohttp client, same sends": clients["sender"]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kind", choices=["consume", "send", "media"])
    parser.add_argument("--amqp-url")
    parser.add_argument("--queue")
    parser.add_argument("--events", type=int)
    parser.add_argument("--url")
    parser.add_argument("--number")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--duration", type=float)
    parser.add_argument("--ids", default="")
    args = parser.parse_args()
    if args.kind == "consume":
        result = asyncio.run(consume(args.amqp_url, args.queue, args.events))
    elif args.kind == "send":
        result = asyncio.run(send(args.url, args.number, args.rate, args.duration))
    else:
        result = asyncio.run(media(args.url, args.rate, args.ids.split(",")))
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
