"""The two reference servers the ingress benchmark measures wapipe against.

    python -m tests.bench.servers bare  --port P   answers 200 and does nothing else: the ceiling
    python -m tests.bench.servers naive --port P   the straightforward aio-pika handler: check the
                                                   signature, publish the body, await its confirm

`bare` runs on uvloop, as wapipe does, so the ceiling is the best aiohttp can do. `naive` runs on
asyncio's own loop, as written in the aio-pika docs; `naive-uvloop` is the same handler on uvloop,
to show how much of wapipe's lead is the loop and how much is the rest.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
from collections.abc import AsyncIterator

import aio_pika
from aiohttp import web

from ingress.app import new_event_loop
from shared import topology

NAIVE_CHANNEL: web.AppKey[aio_pika.abc.AbstractChannel] = web.AppKey("channel")


async def bare(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="ok")


def naive_app(amqp_url: str, secret: bytes) -> web.Application:
    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        expected = "sha256=" + hmac.digest(secret, body, "sha256").hex()
        if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
            return web.Response(status=401)
        exchange = await request.app[NAIVE_CHANNEL].get_exchange(
            topology.EVENTS_EXCHANGE, ensure=False
        )
        message = aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
        await exchange.publish(message, routing_key="status.sent")
        return web.Response(text="ok")

    async def broker(app: web.Application) -> AsyncIterator[None]:
        connection = await aio_pika.connect_robust(amqp_url)
        app[NAIVE_CHANNEL] = await connection.channel(publisher_confirms=True)
        yield
        await connection.close()

    app = web.Application()
    app.router.add_post("/webhook", receive)
    app.cleanup_ctx.append(broker)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["bare", "naive", "naive-uvloop"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--amqp-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--secret", default="")
    args = parser.parse_args()
    if args.kind == "bare":
        app = web.Application()
        app.router.add_post("/webhook", bare)
    else:
        app = naive_app(args.amqp_url, args.secret.encode())
    app.router.add_get("/readyz", lambda request: bare(request))
    loop = asyncio.new_event_loop() if args.kind == "naive" else new_event_loop()
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=loop)


if __name__ == "__main__":
    main()
