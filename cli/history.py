"""``wapipe jobs`` and ``wapipe conversation``: what happened, read from wapipe's database.

    wapipe jobs list [--state S] [--limit N]   the send jobs last changed, newest first
    wapipe jobs show KEY                       one job: its state, wamid, error and body
    wapipe conversation CUSTOMER [--limit N]   both directions with a customer (a phone number
                                               or a BSUID: either finds the one customer)

 The formatting is pure (``job_line``,
``conversation_line``, ``summary``); only ``run_*`` touch the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TypeVar

from wapipe.cli.command import Commands, add_json_flag
from wapipe.cli.database import existing
from wapipe.cli.errors import FAILED, CommandError
from wapipe.shared.settings import Settings

if TYPE_CHECKING:  # the storage (SQLAlchemy) is imported when a command runs, not by `wapipe`
    from sqlalchemy.ext.asyncio import AsyncConnection

    from wapipe.shared.storage.messages import ConversationLine
    from wapipe.shared.storage.send_jobs import JobRecord

T = TypeVar("T")

STATES: Final = ("queued", "sending", "accepted", "failed", "unknown")


def register(commands: Commands) -> None:
    formatter = argparse.ArgumentDefaultsHelpFormatter
    jobs = commands.add_parser("jobs", help="the send jobs and how each ended (from the database)")
    actions = jobs.add_subparsers(dest="jobs_command", required=True, metavar="{list,show}")
    listing = actions.add_parser(
        "list", help="the jobs last changed, newest first", formatter_class=formatter
    )
    listing.add_argument("--state", choices=STATES, help="only jobs in this state")
    listing.add_argument("--limit", type=int, default=20, help="how many jobs at most")
    add_json_flag(listing)
    listing.set_defaults(run=run_jobs_list, service="jobs")
    show = actions.add_parser("show", help="one job: state, wamid, error, the job itself")
    show.add_argument("key", help="the job's idempotency key")
    add_json_flag(show)
    show.set_defaults(run=run_jobs_show, service="jobs")
    talk = commands.add_parser(
        "conversation",
        help="the messages with one customer, both directions, with their statuses",
        formatter_class=formatter,
    )
    talk.add_argument(
        "wa_id",
        metavar="customer",
        help="the customer's phone number (e.g. 16315551181) or business-scoped user id "
        "(e.g. US.13491208655302741918); either shows their one conversation",
    )
    talk.add_argument("--limit", type=int, default=50, help="the last this many messages")
    add_json_flag(talk)
    talk.set_defaults(run=run_conversation, service="conversation")


# --- formatting (pure) ---------------------------------------------------------------------------


def summary(kind: str | None, payload: str | None) -> str:
    """A message object (inbound as Meta sent it, outbound as the job gave it) in a few words."""
    try:
        message: dict[str, Any] = json.loads(payload) if payload else {}
    except ValueError:
        message = {}
    kind = kind or message.get("type") or "?"
    part = message.get(kind)
    part = part if isinstance(part, dict) else {}
    if kind == "text":
        return str(part.get("body", ""))
    if kind == "interactive":
        return _interactive(part)
    if kind == "button":
        return str(part.get("text", ""))
    if kind == "template":
        return f"[template {part.get('name', '?')}]"
    if kind == "reaction":
        return f"[reaction {part.get('emoji', '')}]"
    caption = part.get("caption") or part.get("filename")
    return f"[{kind}]" + (f" {caption}" if caption else "")


def _interactive(part: dict[str, Any]) -> str:
    for reply in ("button_reply", "list_reply"):
        if reply in part:
            return f"[{part[reply].get('title', '')}]"
    body = part.get("body", {}).get("text", "")
    buttons = part.get("action", {}).get("buttons", [])
    titles = " ".join(f"[{b.get('reply', {}).get('title', '')}]" for b in buttons)
    return f"{body} {titles}".strip()


def _when(at: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at)) if at else "--:--:--"


def content(line: ConversationLine) -> tuple[str | None, str | None]:
    """The message's type and body: as stored, else from the job that sent it."""
    if line.payload is not None or line.job is None:
        return line.type, line.payload
    try:
        message = json.loads(line.job).get("message")
    except (ValueError, AttributeError):
        return line.type, None
    if not isinstance(message, dict):
        return line.type, None
    return line.type or message.get("type"), json.dumps(message)


def conversation_line(line: ConversationLine) -> str:
    arrow = "<-" if line.direction == "in" else "->"
    status = ""
    if line.direction == "out":
        status = f"  ({line.status or 'no status yet'}"
        if line.failure_code is not None:
            status += f": {line.failure_code} {line.failure_title or ''}".rstrip()
        status += ")"
    kind, payload = content(line)
    return f"{_when(line.at)} {arrow} {kind or '?':<11} {summary(kind, payload)}{status}"


JOBS_HEADER: Final = f"{'updated':<8}  {'state':<9} key  to recipient  wamid or error"


def job_line(job: JobRecord) -> str:
    outcome = job.wamid or ""
    if job.error_code is not None or job.error_title:
        outcome = f"{job.error_code or ''} {job.error_title or ''}".strip()
    when = _when(job.updated_at)
    return f"{when}  {job.state:<9} {job.idempotency_key}  to {job.recipient}  {outcome}"


def job_detail(job: JobRecord) -> str:
    rows = [
        ("key", job.idempotency_key),
        ("state", job.state),
        ("from", job.phone_number_id),
        ("to", job.recipient),
        ("wamid", job.wamid),
        ("error", f"{job.error_code} {job.error_title}" if job.error_title else None),
        ("details", job.error_details),
        ("attempts", str(job.attempts)),
        ("updated", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.updated_at))),
        ("job", job.job),
    ]
    return "\n".join(f"{name + ':':<9} {value}" for name, value in rows if value is not None)


# --- running -------------------------------------------------------------------------------------


def _read(settings: Settings, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    from wapipe.shared.storage.database import open_database

    async def run() -> T:
        database_url = existing(settings.database_url)
        async with open_database(database_url) as engine, engine.connect() as connection:
            return await query(connection)

    return asyncio.run(run())


def run_jobs_list(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.shared.storage.send_jobs import latest

    jobs = _read(settings, lambda connection: latest(connection, args.limit, args.state))
    if args.json:
        return _json(jobs)
    if jobs:
        print(JOBS_HEADER)
    for job in jobs:
        print(job_line(job))
    if not jobs:
        print("no send jobs yet", file=sys.stderr)
    return 0


def run_jobs_show(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.shared.storage.send_jobs import records

    found = _read(settings, lambda connection: records(connection, [args.key]))
    if args.key not in found:
        raise CommandError(f"no job with the key {args.key!r}", FAILED)
    if args.json:
        return _json(found[args.key])
    print(job_detail(found[args.key]))
    return 0


def run_conversation(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.shared.schemas.jobs import is_bsuid
    from wapipe.shared.storage.messages import conversation

    who = args.wa_id if is_bsuid(args.wa_id) else re.sub(r"[+\s()-]", "", args.wa_id)
    lines = _read(settings, lambda connection: conversation(connection, who, args.limit))
    if args.json:
        return _json(lines)
    for line in lines:
        print(conversation_line(line))
    if not lines:
        print(f"no messages with {args.wa_id}", file=sys.stderr)
    return 0


def _json(value: object) -> int:
    import msgspec

    print(msgspec.json.format(msgspec.json.encode(value)).decode())
    return 0
