"""``wapipe demo``: with ``wapipe up`` running, a customer of the sandbox talks to the example bot
(examples/echo_bot.py, which ``wapipe up`` runs when ``WAPIPE_MESSAGE_HANDLERS`` is unset), and
the conversation is printed as a transcript: each reply with the statuses wapipe stored for it,
the customer's image with where the media worker stored it.

The customer's side goes through the sandbox (``/_sandbox/customers/.../messages``); the replies
are heard on its live feed (``/_sandbox/events``); statuses and media are read from wapipe's
database, so what is printed is what the pipeline did.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import aiohttp
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.cli.errors import FAILED, UNREACHABLE, CommandError
from wapipe.cli.history import summary
from wapipe.shared.settings import Settings
from wapipe.shared.storage import schema

T = TypeVar("T")

# What the customer says, in order: each waits for the bot's answer.
SCRIPT: Final[tuple[dict[str, Any], ...]] = (
    {"type": "text", "body": "Hello!"},
    {"type": "image", "caption": "Our new shop front", "size": 48_213},
    {"type": "text", "body": "menu"},
    {"type": "interactive", "reply": "button_reply", "id": "hours", "title": "Opening hours"},
)
FINAL_STATUSES: Final = ("read", "played", "failed")
STATUS_ORDER: Final = {"sent": 0, "delivered": 1, "read": 2, "played": 3, "failed": 4}


class DemoError(CommandError):
    """Why the demo could not go on: one line; failed, unless nothing answered."""

    def __init__(self, message: str, code: int = FAILED) -> None:
        super().__init__(message, code)


@dataclass
class Step:
    said: dict[str, Any]  # the customer's message object, as the sandbox made it
    reply: dict[str, Any] | None = None  # the business's, as it reached the sandbox
    reply_wamid: str | None = None
    statuses: tuple[str, ...] = ()
    stored_at: str | None = None  # the customer's media, where wapipe stored it


def run(settings: Settings, sandbox_url: str, customer: str, timeout_s: float) -> int:
    steps = asyncio.run(_play(settings, sandbox_url.rstrip("/"), customer, timeout_s))
    print(transcript(steps))
    print(
        f"\nSee it again with `wapipe conversation {customer}`, or live in the console: "
        f"{sandbox_url.rstrip('/')}/_sandbox/console/"
    )
    return 0


def transcript(steps: list[Step]) -> str:
    """The conversation, one line a message, with ``wapipe conversation``'s arrows (the
    business's side: ``<-`` came in from the customer, ``->`` went out to them). Pure."""
    lines = []
    for step in steps:
        kind = step.said.get("type", "?")
        said = summary(kind, json.dumps(step.said))
        lines.append(f"<- customer {kind:<11} {said}")
        if step.stored_at:
            lines.append(f"{'':<24} stored by the media worker at {step.stored_at}")
        if step.reply is not None:
            kind = step.reply.get("type", "?")
            answer = summary(kind, json.dumps(step.reply))
            lines.append(f"-> business {kind:<11} {answer}")
            lines.append(f"{'':<24} {' > '.join(step.statuses) or 'no status'}  {step.reply_wamid}")
    return "\n".join(lines)


async def _play(settings: Settings, base: str, customer: str, timeout_s: float) -> list[Step]:
    from wapipe.shared.storage.database import open_database

    async with aiohttp.ClientSession() as session:
        await _check_sandbox(session, base)  # before the database: none is made for nothing
        async with open_database(settings.database_url) as engine:
            return await _conversation(session, engine, base, customer, timeout_s)


async def _conversation(
    session: aiohttp.ClientSession,
    engine: AsyncEngine,
    base: str,
    customer: str,
    timeout_s: float,
) -> list[Step]:
    print(f"wapipe demo: customer {customer} writes to the sandbox's business...", flush=True)
    async with session.get(
        f"{base}/_sandbox/events",
        params={"backlog": "no"},
        timeout=aiohttp.ClientTimeout(total=None, sock_read=None),
    ) as feed:
        events = _events(feed.content)
        return [
            await _exchange(session, engine, events, base, customer, message, timeout_s)
            for message in SCRIPT
        ]


async def _check_sandbox(session: aiohttp.ClientSession, base: str) -> None:
    try:
        async with session.get(f"{base}/_sandbox/state") as response:
            if response.status == 200:
                return
    except aiohttp.ClientError:
        pass
    raise DemoError(
        f"no sandbox answers at {base}: start `make up` (or `wapipe up`) first", UNREACHABLE
    )


async def _events(stream: aiohttp.StreamReader) -> AsyncIterator[dict[str, Any]]:
    async for raw in stream:
        line = raw.decode().strip()
        if line.startswith("data: "):
            yield json.loads(line[len("data: ") :])


async def _exchange(
    session: aiohttp.ClientSession,
    engine: AsyncEngine,
    events: AsyncIterator[dict[str, Any]],
    base: str,
    customer: str,
    message: dict[str, Any],
    timeout_s: float,
) -> Step:
    url = f"{base}/_sandbox/customers/{customer}/messages"
    async with session.post(url, json=message) as response:
        if response.status != 200:
            raise DemoError(f"the sandbox refused the customer's message: {await response.text()}")
        wamid = (await response.json())["wamid"]
    step = Step(said=message)
    try:
        async with asyncio.timeout(timeout_s):
            async for event in events:
                if event["kind"] == "inbound" and event["wamid"] == wamid:
                    step.said = event["message"]
                if event["kind"] == "outbound" and event["wa_id"] == customer:
                    step.reply, step.reply_wamid = event["message"], event["wamid"]
                    break
    except TimeoutError:
        raise DemoError(
            f"no reply to the customer's {message['type']} within {timeout_s:g} s: is `wapipe up` "
            "running with the example bot (WAPIPE_MESSAGE_HANDLERS unset)? "
            "`wapipe jobs list` shows what the sender did"
        ) from None
    assert step.reply_wamid is not None
    step.statuses = await _until(
        lambda: _statuses(engine, step.reply_wamid or ""),
        lambda found: any(status in FINAL_STATUSES for status in found),
        timeout_s,
    )
    if message["type"] in ("image", "document", "audio", "video", "sticker"):
        stored = await _until(lambda: _stored(engine, wamid), bool, timeout_s)
        step.stored_at = stored.removeprefix("file://") or None
    return step


async def _until(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout_s: float
) -> T:
    """What ``read`` gives once ``done`` says so, or the last it gave after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await read()
        if done(value) or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


async def _statuses(engine: AsyncEngine, wamid: str) -> tuple[str, ...]:
    table = schema.statuses.c
    query = select(table.status).where(table.wamid == wamid)
    async with engine.connect() as connection:
        found = set((await connection.execute(query)).scalars())
    return tuple(sorted(found, key=lambda status: STATUS_ORDER.get(status, len(STATUS_ORDER))))


async def _stored(engine: AsyncEngine, wamid: str) -> str:
    table = schema.media.c
    query = select(table.location).where(table.wamid == wamid, table.state == "stored")
    async with engine.connect() as connection:
        return (await connection.execute(query)).scalar() or ""
