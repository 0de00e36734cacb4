"""``wapipe send``: publish one send job from the command line (shared/publisher.py).

    wapipe send text --to 16315551181 --body "Your order has shipped" [--preview-url]
    wapipe send text --to US.13491208655302741918 --body "..."   a BSUID: sent as recipient
    wapipe send image --to ... (--id ID | --link URL | --file PATH [--mime-type T]) [--caption C]
    wapipe send audio|video|document|sticker ...   the same (document adds --filename)
    wapipe send template --to ... --name shipping_update --language en_US [--param TEXT ...]
    wapipe send reaction --to ... --message-id WAMID --emoji 👍
    wapipe send mark-read --message-id WAMID [--typing]
    wapipe send job FILE|-                          a whole JSON job (schemas/send-job.schema.json)

Every built job takes ``--from`` (the business number's id: by default
``WAPIPE_PHONE_NUMBER_ID``, else the number of a sandbox running here), ``--key`` (the idempotency
key; a fresh uuid4 by default), ``--callback-data`` and ``--reply-to``; and, but for mark-read,
``--wait``: wait for the sender's outcome, print it, exit 1 if the job failed. The job is
checked against the contract before anything is published: an invalid one exits 2 with
msgspec's reason.

"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import uuid
from pathlib import Path
from typing import Any, Final

import msgspec

from wapipe.cli.command import Commands
from wapipe.cli.errors import FAILED, UNREACHABLE, CommandError
from wapipe.cli.send_wait import WAIT_STATUSES, Watch
from wapipe.shared.schemas.jobs import Job, job_decoder, routing_key
from wapipe.shared.schemas.outbound import OutboundAccepted, OutboundEvent
from wapipe.shared.settings import Settings

MEDIA_KINDS: Final = ("image", "audio", "video", "document", "sticker")
_CAPTIONED: Final = ("image", "video", "document")


class InvalidJob(Exception):
    """What the command line asked for is not a valid job."""


def register(commands: Commands) -> None:
    send = commands.add_parser("send", help="publish a send job on wa.outbound")
    kinds = send.add_subparsers(dest="send_kind", required=True, metavar="KIND")
    job = _common()
    text = kinds.add_parser("text", parents=[job], help="a text message")
    _recipient(text)
    text.add_argument("--body", required=True, help="the text (up to 4096 characters)")
    text.add_argument("--preview-url", action="store_true", help="preview the first URL")
    for kind in MEDIA_KINDS:
        _media_parser(kinds, job, kind)
    template = kinds.add_parser("template", parents=[job], help="an approved template")
    _recipient(template)
    template.add_argument("--name", required=True, help="the template's name")
    template.add_argument("--language", required=True, help="its language code, e.g. en_US")
    template.add_argument(
        "--param", action="append", default=[], help="a body text parameter, in order; repeat"
    )
    template.add_argument(
        "--header-param", action="append", default=[], help="a header text parameter; repeat"
    )
    reaction = kinds.add_parser("reaction", parents=[job], help="react to a message")
    _recipient(reaction)
    reaction.add_argument("--message-id", required=True, help="the wamid reacted to")
    reaction.add_argument("--emoji", required=True, help='one emoji; "" removes the reaction')
    # A read receipt ends in no event, so there is nothing to --wait for.
    read = kinds.add_parser(
        "mark-read", parents=[_common(waiting=False)], help="mark an inbound message read"
    )
    read.add_argument("--message-id", required=True, help="the inbound wamid")
    read.add_argument("--typing", action="store_true", help='also show "typing…" (up to 25 s)')
    whole = kinds.add_parser(
        "job", parents=[_waiting()], help="publish a whole JSON job (- for standard input)"
    )
    whole.add_argument("file", help="a JSON file, or - for standard input")
    send.set_defaults(run=run_send, service="send")


def _common(*, waiting: bool = True) -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, parents=[_waiting()] if waiting else [])
    common.add_argument(
        "--from",
        dest="phone_number_id",
        help="the business number's phone number id (default: WAPIPE_PHONE_NUMBER_ID, else "
        "the number of the sandbox `wapipe up` runs here)",
    )
    common.add_argument("--key", help="the idempotency key (default: a fresh uuid4)")
    common.add_argument("--callback-data", help="echoed on the message's statuses (<= 512)")
    common.add_argument("--reply-to", help="the wamid this answers (shown quoted)")
    common.add_argument("--expires-at", type=float, help="unix seconds: not sent after this")
    return common


def _waiting() -> argparse.ArgumentParser:
    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument(
        "--wait",
        nargs="?",
        const="accepted",
        choices=WAIT_STATUSES,
        metavar="STATUS",
        help="wait until the message is accepted (the default), sent, delivered or read, "
        "printing each step; exit 1 with the Cloud API's code and title if it fails "
        "(--wait=delivered)",
    )
    waiting.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="with --wait: seconds to wait for the status (default: 60)",
    )
    return waiting


def _recipient(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--to",
        required=True,
        help="the customer: a phone number or wa_id (16315551181), or a business-scoped user "
        "id (US.13491208655302741918), sent as the job's recipient",
    )


def _media_parser(
    kinds: argparse._SubParsersAction[argparse.ArgumentParser],
    common: argparse.ArgumentParser,
    kind: str,
) -> None:
    media = kinds.add_parser(kind, parents=[common], help=f"a message of type {kind}")
    _recipient(media)
    source = media.add_mutually_exclusive_group(required=True)
    source.add_argument("--id", help="an uploaded media id")
    source.add_argument("--link", help="an http(s) URL Meta fetches")
    source.add_argument("--file", help="a local file the sender uploads first")
    media.add_argument("--mime-type", help="the file's type (default: guessed from its name)")
    if kind in _CAPTIONED:
        media.add_argument("--caption", help="a caption (up to 1024 characters)")
    if kind == "document":
        media.add_argument("--filename", help="the name shown")


# --- building the job ----------------------------------------------------------------------------


def _drop_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}


def _message(args: argparse.Namespace) -> dict[str, Any]:
    kind = args.send_kind
    if kind == "text":
        text = {"body": args.body, **({"preview_url": True} if args.preview_url else {})}
        return {"type": "text", "text": text}
    if kind in MEDIA_KINDS:
        file = str(Path(args.file).resolve()) if args.file else None  # the sender's cwd differs
        media = {
            "id": args.id,
            "link": args.link,
            "file": file,
            "mime_type": args.mime_type,
            "caption": getattr(args, "caption", None),
            "filename": getattr(args, "filename", None),
        }
        return {"type": kind, kind: _drop_none(media)}
    if kind == "template":
        return {"type": "template", "template": _template(args)}
    return {"type": "reaction", "reaction": {"message_id": args.message_id, "emoji": args.emoji}}


def _template(args: argparse.Namespace) -> dict[str, Any]:
    components = [
        {"type": part, "parameters": [{"type": "text", "text": text} for text in texts]}
        for part, texts in (("header", args.header_param), ("body", args.param))
        if texts
    ]
    template: dict[str, Any] = {"name": args.name, "language": {"code": args.language}}
    return {**template, "components": components} if components else template


def build_job(args: argparse.Namespace, settings: Settings) -> Job:
    """The job the options describe, checked against the contract; InvalidJob if it is not."""
    if args.send_kind == "job":
        return _decoded(_read(args.file))
    number = args.phone_number_id or settings.phone_number_id
    if not number:
        raise InvalidJob("give --from, or set WAPIPE_PHONE_NUMBER_ID: the number to send from")
    envelope = {"idempotency_key": args.key or str(uuid.uuid4()), "phone_number_id": number}
    if args.send_kind == "mark-read":
        job = {
            "kind": "mark_read",
            **envelope,
            "message_id": args.message_id,
            "typing": args.typing,
        }
    else:
        job = {
            "kind": "send",
            **envelope,
            **_address(args.to),
            "message": _message(args),
            **_drop_none(
                {
                    "reply_to": args.reply_to,
                    "callback_data": args.callback_data,
                    "expires_at": args.expires_at,
                }
            ),
        }
    return _decoded(msgspec.json.encode(job))


def _address(customer: str) -> dict[str, str]:
    """A phone number has only digits and + ( ) - and spaces; anything else is meant as a BSUID
    (``recipient``), and the contract refuses it if it is not one."""
    return {"recipient": customer} if re.search(r"[A-Za-z.]", customer) else {"to": customer}


def _read(name: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
    except OSError as exc:
        raise InvalidJob(f"cannot read {name}: {exc.strerror}") from None


def _decoded(body: bytes) -> Job:
    try:
        return job_decoder.decode(body)
    except msgspec.DecodeError as exc:  # ValidationError included
        raise InvalidJob(str(exc)) from None


# --- running it ----------------------------------------------------------------------------------


def run_send(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.cli.localsandbox import with_local_sandbox

    if args.send_kind != "job" and not (args.phone_number_id or settings.phone_number_id):
        settings = with_local_sandbox(settings, "send", need=("phone_number_id",))
        if not settings.phone_number_id:
            raise CommandError(
                "no number to send from: give --from, set WAPIPE_PHONE_NUMBER_ID, or start "
                "the local sandbox (`wapipe up`)",
                UNREACHABLE,
            )
    try:
        job = build_job(args, settings)
    except InvalidJob as exc:
        raise CommandError(f"invalid job: {exc}") from None
    wait_for: str | None = getattr(args, "wait", None)
    try:
        outcome = asyncio.run(_publish(settings, job, wait_for, getattr(args, "timeout", 0.0)))
    except TimeoutError:
        raise CommandError(
            f"published {job.idempotency_key}, no outcome within {args.timeout:g} s"
            " (is the sender running? `wapipe jobs show KEY` tells later)",
            UNREACHABLE,
        ) from None
    return 0 if outcome is None or outcome.failure is None else FAILED


def describe_outcome(outcome: OutboundEvent) -> str:
    if isinstance(outcome, OutboundAccepted):
        return f"accepted: {outcome.wamid} to {outcome.wa_id or outcome.to or outcome.recipient}"
    code = f"{outcome.code} " if outcome.code is not None else ""
    details = f" ({outcome.details})" if outcome.details else ""
    return f"failed at {outcome.stage}: {code}{outcome.title}{details}"


async def _publish(
    settings: Settings, job: Job, wait_for: str | None, timeout_s: float
) -> Watch | None:
    """Publish the job; with ``wait_for``, follow it up to that status, heard on a queue of our
    own bound before the job leaves (so a quick answer is not missed). One connection, plain
    (a command fails loudly rather than reconnect in silence: shared/amqp.py)."""
    from wapipe.shared import amqp
    from wapipe.shared.publisher import JobPublisher
    from wapipe.shared.topology import EVENTS_EXCHANGE

    connection = await amqp.connect_once(settings.amqp_url, amqp.connection_name("send"))
    try:
        queue = None
        if wait_for is not None:
            channel = await connection.channel()
            queue = await channel.declare_queue(exclusive=True, auto_delete=True)
            for pattern in ("outbound.#", "status.#"):
                await queue.bind(EVENTS_EXCHANGE, pattern)
        async with JobPublisher(settings, connection=connection) as jobs:
            await jobs.publish(job)
        print(f"published {job.idempotency_key} to {routing_key(job.phone_number_id)}")
        if queue is None or wait_for is None:
            return None
        watch = Watch(job.idempotency_key, wait_for)
        await asyncio.wait_for(_follow(queue, watch), timeout_s)
        return watch
    finally:
        await amqp.close(connection)


async def _follow(queue: Any, watch: Watch) -> None:
    async with queue.iterator(no_ack=True) as messages:
        async for message in messages:
            for line in watch.heard(message.routing_key or "", message.body):
                print(line, flush=True)
            if watch.done:
                return
    raise TimeoutError  # the queue went away
