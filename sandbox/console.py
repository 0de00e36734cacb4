"""The sandbox's console: a page to watch and steer the sandbox in a browser, served from
``sandbox/static/`` (plain HTML, CSS and JS; nothing to build).

GET  /_sandbox/console/          the page: a chat per customer (and the flows they filled),
                                 webhooks, limit hits, faults, the flows endpoint's health
GET  /_sandbox/events            server-sent events of the feed (feed.py), backlog first
                                 (?backlog=no: only what happens from now on)
GET  /_sandbox/media/{id}        a media item's bytes, for the page to show inline
GET  /_sandbox/chaos             the webhook chaos in force
POST /_sandbox/chaos             {"delay_s": [MIN, MAX], "duplicate_rate", "reorder_rate",
                                 "batch_max"}: change it (what is absent stays)
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from wapipe.sandbox.errors import GraphError
from wapipe.sandbox.keys import FEED, SENDER, WORLD
from wapipe.sandbox.webhooks import Chaos

STATIC: Final = Path(__file__).parent / "static"
HEARTBEAT_S: Final = 15.0


def routes(prefix: str) -> list[web.AbstractRouteDef]:
    return [
        web.get(prefix + "/console", to_console),
        web.get(prefix + "/console/", page),
        web.static(prefix + "/console", STATIC),
        web.get(prefix + "/events", events),
        web.get(prefix + "/media/{media_id}", media),
        web.get(prefix + "/chaos", chaos),
        web.post(prefix + "/chaos", change_chaos),
    ]


async def to_console(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.path + "/")


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html")


async def events(request: web.Request) -> web.StreamResponse:
    """Every event after ``Last-Event-ID`` (or the backlog), then each as it happens."""
    feed = request.app[FEED]
    try:
        seen = int(request.headers.get("Last-Event-ID", "0"))
    except ValueError:
        seen = 0
    if request.query.get("backlog") == "no":  # only what happens from now on
        seen = feed.last_seq()
    queue = feed.listen()  # before the backlog is read: nothing falls in between
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    try:
        for kept in feed.since(seen):
            seen = await _write(response, kept, seen)
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            if event is None:
                break
            seen = await _write(response, event, seen)
    except ConnectionResetError:
        pass  # the browser went away
    finally:
        feed.forget(queue)
    return response


async def _write(response: web.StreamResponse, event: dict[str, Any], seen: int) -> int:
    if event["seq"] <= seen:
        return seen
    data = json.dumps(event, separators=(",", ":"))
    await response.write(f"id: {event['seq']}\ndata: {data}\n\n".encode())
    return int(event["seq"])


async def media(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    try:
        item = world.media.find(request.match_info["media_id"], world.clock.now())
    except GraphError:
        raise web.HTTPNotFound(text="no such media, or deleted") from None
    return web.Response(body=item.content, content_type=item.mime_type)


async def chaos(request: web.Request) -> web.Response:
    return web.json_response(dataclasses.asdict(request.app[SENDER].chaos))


async def change_chaos(request: web.Request) -> web.Response:
    sender = request.app[SENDER]
    try:
        body = await request.json()
        fields = {**dataclasses.asdict(sender.chaos), **body}
        fields["delay_s"] = tuple(float(value) for value in fields["delay_s"])
        sender.chaos = Chaos(**fields)
    except (ValueError, TypeError) as exc:
        raise web.HTTPBadRequest(text=f"chaos: {exc}") from None
    answer = dataclasses.asdict(sender.chaos)
    request.app[FEED].publish("control", what="chaos", chaos=answer)
    return web.json_response(answer)
