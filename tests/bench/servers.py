"""The reference servers the ingress benchmark measures wapipe against.

    python -m tests.bench.servers bare         --port P   answers 200, nothing else: the ceiling
    python -m tests.bench.servers naive        --port P   the same job as wapipe's ingress, written
                                                          straightforwardly with aio-pika
    python -m tests.bench.servers publish-only --port P   checks the signature and publishes the
                                                          raw body as one message: the floor of any
                                                          design that publishes per webhook

`naive` is what the aio-pika docs lead to: asyncio's own loop, `json`, one `aio_pika.Message` per
event, each publish awaited for its confirm in turn. `bare` and `publish-only` run on uvloop, as
wapipe does, so they bound what wapipe could reach from above and show what the broker costs.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aio_pika
from aio_pika.abc import AbstractExchange
from aiohttp import web

from wapipe.shared import topology
from wapipe.shared.eventloop import new_event_loop

Handler = Callable[[web.Request], Awaitable[web.Response]]
EXCHANGE: web.AppKey[AbstractExchange] = web.AppKey("exchange")


async def bare(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="ok")


def _signed(secret: bytes, body: bytes, request: web.Request) -> bool:
    expected = "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", ""))


def naive_handler(secret: bytes) -> Handler:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not _signed(secret, body, request):
            return web.Response(status=401)
        exchange = request.app[EXCHANGE]
        received_at = time.time()
        for entry in json.loads(body)["entry"]:
            for change in entry["changes"]:
                value = change["value"]
                for kind, items in (
                    ("status", value.get("statuses", [])),
                    ("message", value.get("messages", [])),
                ):
                    for item in items:
                        sub_kind = item["status"] if kind == "status" else item["type"]
                        key = f"{item['id']}:{sub_kind}" if kind == "status" else item["id"]
                        event = {
                            "kind": kind,
                            "key": key,
                            "waba_id": entry["id"],
                            "metadata": value.get("metadata"),
                            "received_at": received_at,
                            "payload": item,
                        }
                        message = aio_pika.Message(
                            json.dumps(event).encode(),
                            message_id=key,
                            content_type="application/json",
                            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                            headers={
                                "x-wa-waba-id": entry["id"],
                                "x-wa-phone-number-id": value["metadata"]["phone_number_id"],
                                "x-wa-received-at": str(received_at),
                            },
                        )
                        await exchange.publish(message, routing_key=f"{kind}.{sub_kind}")
        return web.Response(text="ok")

    return receive


def publish_only_handler(secret: bytes) -> Handler:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        if not _signed(secret, body, request):
            return web.Response(status=401)
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await request.app[EXCHANGE].publish(message, routing_key="status.sent")
        return web.Response(text="ok")

    return receive


def broker_context(amqp_url: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def broker(app: web.Application) -> AsyncIterator[None]:
        connection = await aio_pika.connect_robust(amqp_url)
        channel = await connection.channel(publisher_confirms=True)
        app[EXCHANGE] = await channel.get_exchange(topology.EVENTS_EXCHANGE)
        yield
        await connection.close()

    return broker


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bare", "naive", "publish-only"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--secret", default="")
    args = parser.parse_args()
    app = web.Application()
    if args.kind == "bare":
        app.router.add_post("/webhook", bare)
    else:
        handler = naive_handler if args.kind == "naive" else publish_only_handler
        app.router.add_post("/webhook", handler(args.secret.encode()))
        app.cleanup_ctx.append(broker_context(args.amqp_url))
    app.router.add_get("/readyz", bare)
    loop = asyncio.new_event_loop() if args.kind == "naive" else new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
