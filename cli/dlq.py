"""``wapipe dlq list|show|replay|purge``: the command line over workers/deadletters.py, which
it imports only when a dlq command runs."""

from __future__ import annotations

import argparse
import asyncio
import sys

import msgspec

from wapipe.cli.command import Commands
from wapipe.shared.settings import Settings


def _dlq_limit(text: str) -> int:
    """An argparse type: a count of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"a whole number of 1 or more, not {text!r}")
    return value


def register(commands: Commands) -> None:
    dlq = commands.add_parser("dlq", help="the dead letters of every queue")
    actions = dlq.add_subparsers(
        dest="dlq_command", required=True, metavar="{list,show,replay,purge}"
    )
    actions.add_parser("list", help="every dead-letter queue and its count").set_defaults(
        run=_dlq_list, service="dlq"
    )
    show = actions.add_parser("show", help="peek at dead letters, leaving them in place")
    show.add_argument("queue", help="a queue (wa.status) or its dead-letter queue (wa.status.dlq)")
    show.add_argument(
        "--limit", type=_dlq_limit, default=10, help="how many, from the head of the dlq"
    )
    show.add_argument("--json", action="store_true", help="a JSON array, one object each")
    show.set_defaults(run=_dlq_show, service="dlq")
    replay = actions.add_parser("replay", help="move dead letters back to their queue")
    replay.add_argument("queue", help="a queue (wa.status) or its dead-letter queue")
    replay.add_argument("--limit", type=_dlq_limit, help="at most this many (default: all)")
    replay.set_defaults(run=_dlq_replay, service="dlq")
    purge = actions.add_parser("purge", help="delete every dead letter of a queue, for good")
    purge.add_argument("queue", help="a queue (wa.status) or its dead-letter queue")
    purge.add_argument("--yes", action="store_true", help="yes, delete them")
    purge.set_defaults(run=_dlq_purge, service="dlq")


def _dlq_failed(error: Exception) -> int:
    from wapipe.workers.deadletters import UnknownQueue

    print(f"wapipe dlq: {error}", file=sys.stderr)
    return 2 if isinstance(error, UnknownQueue) else 1


def _dlq_list(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.workers.deadletters import DeadLetterError, list_queues, render_queues

    try:
        queues = asyncio.run(list_queues(settings.amqp_url))
    except DeadLetterError as exc:
        return _dlq_failed(exc)
    print(render_queues(queues))
    return 0


def _dlq_show(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.workers.deadletters import DeadLetterError, render_dead_letters, resolve, show

    try:
        dead_letters = asyncio.run(show(settings.amqp_url, args.queue, args.limit))
    except DeadLetterError as exc:
        return _dlq_failed(exc)
    if args.json:
        print(msgspec.json.format(msgspec.json.encode(dead_letters)).decode())
    else:
        print(render_dead_letters(resolve(args.queue).dead_letter_queue, dead_letters))
    return 0


def _dlq_replay(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.workers.deadletters import DeadLetterError, replay, resolve

    try:
        replayed = asyncio.run(replay(settings.amqp_url, args.queue, args.limit))
    except DeadLetterError as exc:
        return _dlq_failed(exc)
    queue = resolve(args.queue)
    print(f"replayed {replayed} from {queue.dead_letter_queue} to {queue.name}")
    return 0


def _dlq_purge(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.workers.deadletters import DeadLetterError, purge, resolve

    try:
        dead_letter_queue = resolve(args.queue).dead_letter_queue
        if not args.yes:
            print(
                f"wapipe dlq purge: this deletes every message in {dead_letter_queue} for good; "
                "add --yes to do it",
                file=sys.stderr,
            )
            return 2
        purged = asyncio.run(purge(settings.amqp_url, args.queue))
    except DeadLetterError as exc:
        return _dlq_failed(exc)
    print(f"purged {purged} from {dead_letter_queue}")
    return 0
