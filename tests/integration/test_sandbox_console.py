"""The console's side of the sandbox: its page, its live feed of events (server-sent), media
inline, chaos steered; and a stream left open does not hold the sandbox's shutdown."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from tests.integration.sandbox_support import (
    CUSTOMER,
    Receiver,
    SandboxClient,
    send,
    start_sandbox,
    text_to,
)


async def feed(response: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
    async for raw in response.content:
        line = raw.decode().strip()
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


async def next_of(
    events: AsyncIterator[dict[str, Any]], kind: str, **fields: Any
) -> dict[str, Any]:
    async with asyncio.timeout(10):
        async for event in events:
            if event["kind"] == kind and all(event.get(k) == v for k, v in fields.items()):
                return event
    raise AssertionError(f"the feed ended before a {kind} event")


async def test_the_feed_carries_messages_both_ways_webhooks_refusals_and_faults(
    receiver: tuple[Receiver, str],
) -> None:
    sandbox: SandboxClient = await start_sandbox(receiver[1], pair_burst=1, pair_interval_s=600)
    try:
        stream = await sandbox.get("/_sandbox/events")
        assert stream.headers["Content-Type"] == "text/event-stream"
        events = feed(stream)

        said = await sandbox.post(
            f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": "text", "body": "hi"}
        )
        wamid = (await said.json())["wamid"]
        inbound = await next_of(events, "inbound")
        assert (inbound["wa_id"], inbound["wamid"]) == (CUSTOMER, wamid)
        assert inbound["message"]["text"] == {"body": "hi"}

        status, answer = await send(sandbox, text_to(body="hello back"))
        assert status == 200
        sent = answer["messages"][0]["id"]
        outbound = await next_of(events, "outbound")
        assert outbound["wamid"] == sent
        assert outbound["message"] == {"type": "text", "text": {"body": "hello back"}}
        read = await next_of(events, "webhook", delivered=True)
        while "read" not in json.dumps(read["body"]):
            read = await next_of(events, "webhook", delivered=True)
        [change] = read["body"]["entry"][0]["changes"]
        assert change["value"]["statuses"][0]["id"] == sent
        assert read["attempts"][-1]["status"] == 200

        assert (await send(sandbox, text_to(body="too soon")))[0] == 400
        refused = await next_of(events, "refused")
        assert refused["code"] == 131056
        assert refused["path"].endswith("/messages")

        fault = {"endpoint": "messages", "code": 131000, "count": 1}
        assert (await sandbox.post("/_sandbox/faults", json=fault)).status == 200
        assert (await next_of(events, "control", what="faults"))["faults"][0]["code"] == 131000
        await send(sandbox, text_to(to="16315550000"))
        assert (await next_of(events, "fault"))["fault"]["code"] == 131000

        # A console that connects now catches up on what happened; ?backlog=no only goes on.
        again = feed(await sandbox.get("/_sandbox/events"))
        assert (await next_of(again, "inbound"))["wamid"] == wamid
        fresh = feed(await sandbox.get("/_sandbox/events", params={"backlog": "no"}))
        await sandbox.post(f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": "text"})
        assert (await next_of(fresh, "inbound"))["wamid"] != wamid
    finally:
        async with asyncio.timeout(10):  # open streams end when the sandbox stops
            await sandbox.close()


async def test_the_console_page_media_inline_and_chaos(sandbox: SandboxClient) -> None:
    page = await sandbox.get("/_sandbox/console", allow_redirects=True)
    assert page.status == 200
    assert page.url.path == "/_sandbox/console/"
    html = await page.text()
    assert '<script src="console.js"></script>' in html
    for asset in ("console.js", "console.css"):
        assert (await sandbox.get(f"/_sandbox/console/{asset}")).status == 200

    said = await sandbox.post(
        f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": "image", "size": 5000}
    )
    media_id = (await said.json())["media_id"]
    image = await sandbox.get(f"/_sandbox/media/{media_id}")
    assert (image.status, image.content_type, len(await image.read())) == (200, "image/png", 5000)
    assert (await sandbox.get("/_sandbox/media/404")).status == 404

    chaos = {"delay_s": [0.1, 0.2], "duplicate_rate": 0.5}
    changed = await sandbox.post("/_sandbox/chaos", json=chaos)
    assert (await changed.json())["delay_s"] == [0.1, 0.2]
    now = await (await sandbox.get("/_sandbox/chaos")).json()
    assert (now["duplicate_rate"], now["batch_max"]) == (0.5, 1)
    refused = await sandbox.post("/_sandbox/chaos", json={"duplicate_rate": 2})
    assert refused.status == 400
