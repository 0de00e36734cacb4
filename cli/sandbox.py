"""``wapipe sandbox``: run the local Cloud API; ``wapipe sandbox customer send|add|open-flow``: act
as a customer of a running one; ``wapipe sandbox load``: send webhooks at a steady rate to a
receiver. The sandbox itself (sandbox/) is imported only when it runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from wapipe.cli.command import Commands, add_json_flag
from wapipe.cli.errors import FAILED, UNREACHABLE, USAGE, CommandError
from wapipe.shared.settings import Settings, require


def _sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.sandbox.app import run as run_sandbox
    from wapipe.sandbox.config import EXAMPLE_TEMPLATE, SandboxConfig
    from wapipe.sandbox.webhooks import Chaos, Retry

    try:
        config = SandboxConfig(
            host=args.host,
            port=args.port,
            webhook_url=args.webhook_url,
            rate_per_s=args.rate,
            pair_interval_s=args.pair_interval,
            pair_burst=args.pair_burst,
            media_url_ttl_s=args.media_url_ttl,
            inbound_media_ttl_s=args.inbound_media_ttl,
            request_log_size=args.request_log,
            graph_version=settings.graph_version,
            chaos=Chaos(
                seed=args.seed,
                delay_s=(args.delay[0], args.delay[1]),
                duplicate_rate=args.duplicate_rate,
                reorder_rate=args.reorder_rate,
                batch_max=args.batch_max,
            ),
            retry=Retry(first_s=args.retry_first, max_attempts=args.retry_attempts),
            templates=(EXAMPLE_TEMPLATE,),
        )
    except ValueError as exc:  # flags out of range
        raise CommandError(str(exc)) from None
    run_sandbox(settings, config)
    return 0


def register(commands: Commands) -> None:
    sandbox = commands.add_parser(
        "sandbox",
        help="run the local Cloud API (accepts WAPIPE_ACCESS_TOKEN, signs webhooks "
        "with the first of WAPIPE_APP_SECRETS)",
    )
    sandbox.add_argument("--host", default="127.0.0.1", help="listen address")
    sandbox.add_argument("--port", type=int, default=8090, help="listen port")
    sandbox.add_argument(
        "--webhook-url",
        default="http://127.0.0.1:8080/webhook",
        help="where webhooks go (the ingress)",
    )
    sandbox.add_argument("--rate", type=int, default=80, help="messages/s per phone number")
    sandbox.add_argument(
        "--pair-interval",
        type=float,
        default=6.0,
        help="pair rate: one message per this many seconds to one customer",
    )
    sandbox.add_argument("--pair-burst", type=int, default=45, help="pair rate: burst size")
    sandbox.add_argument(
        "--media-url-ttl", type=float, default=300.0, help="seconds a media download URL works"
    )
    sandbox.add_argument(
        "--inbound-media-ttl",
        type=float,
        default=7 * 24 * 3600.0,
        help="seconds an inbound media id resolves",
    )
    sandbox.add_argument(
        "--request-log",
        type=int,
        default=10_000,
        help="Graph requests kept for /_sandbox/requests (the oldest go first)",
    )
    sandbox.add_argument("--seed", type=int, default=0, help="replays the same chaos")
    sandbox.add_argument(
        "--delay",
        type=float,
        nargs=2,
        default=(0.0, 0.0),
        metavar=("MIN_S", "MAX_S"),
        help="between one status and the next",
    )
    sandbox.add_argument(
        "--duplicate-rate", type=float, default=0.0, help="share of webhooks sent twice"
    )
    sandbox.add_argument(
        "--reorder-rate",
        type=float,
        default=0.0,
        help="share of messages whose read comes before delivered",
    )
    sandbox.add_argument("--batch-max", type=int, default=1, help="changes per webhook body")
    sandbox.add_argument(
        "--retry-attempts", type=int, default=10, help="tries of a webhook before it is given up"
    )
    sandbox.add_argument(
        "--retry-first",
        type=float,
        default=1.0,
        help="seconds before the first redelivery (then doubling)",
    )
    sandbox.set_defaults(run=_sandbox, service="sandbox")
    clients = sandbox.add_subparsers(dest="sandbox_command", metavar="{customer,load}")
    _customer_parser(clients)
    load = clients.add_parser("load", help="send webhooks at a steady rate to a receiver")
    load.add_argument("--webhook-url", default="http://127.0.0.1:8080/webhook", help="the receiver")
    load.add_argument("--rate", type=float, default=1000, help="webhooks/s")
    load.add_argument("--duration", type=float, default=10, help="seconds")
    load.add_argument("--mix", default="status=1", help="e.g. status=0.75,text=0.25")
    load.add_argument("--seed", type=int, default=0, help="replays the same load")
    load.set_defaults(run=_load, service="load")


def _customer_parser(clients: Commands) -> None:
    customer = clients.add_parser("customer", help="act as a customer of a running sandbox")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--sandbox-url", default="http://127.0.0.1:8090", help="the running sandbox"
    )
    add_json_flag(common)
    actions = customer.add_subparsers(dest="customer_command", required=True)
    send = actions.add_parser(
        "send", parents=[common], help="the customer sends a message (a signed webhook)"
    )
    send.add_argument("wa_id", help="the customer's WhatsApp id, e.g. 16315551181")
    send.add_argument("--type", default="text", help="text, image, audio, location, ...")
    send.add_argument("--text", help="the body of a text message")
    send.add_argument(
        "--field",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a field of the message, JSON values allowed; repeat as needed",
    )
    send.set_defaults(run=_customer_send, service="customer")
    flow = actions.add_parser(
        "open-flow",
        parents=[common],
        help="the customer opens a flow message it received and fills the flow (the business's "
        "endpoint called as Meta's client calls it)",
    )
    flow.add_argument("wa_id", help="the customer's WhatsApp id")
    flow.add_argument("message_id", help="the flow message's wamid")
    flow.add_argument(
        "--answers",
        default="{}",
        metavar="JSON|@FILE",
        help='what the customer enters, by screen: {"SCREEN": {"field": "value"}}',
    )
    flow.set_defaults(run=_customer_open_flow, service="customer")
    add = actions.add_parser("add", parents=[common], help="add a customer, or change one")
    add.add_argument("wa_id", help="the customer's WhatsApp id (digits)")
    add.add_argument("name", help="their profile name")
    add.add_argument(
        "--stopped-marketing",
        action="store_true",
        help="they chose to receive no marketing (templates of that category fail: 131050)",
    )
    add.set_defaults(run=_customer_add, service="customer")


def parse_fields(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; a value that is JSON (a number, an object, true) is taken as such."""
    fields: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CommandError(f"--field {pair!r}: give KEY=VALUE")
        try:
            fields[key] = json.loads(value)
        except ValueError:
            fields[key] = value
    return fields


def _customer_send(settings: Settings, args: argparse.Namespace) -> int:
    fields = parse_fields(args.field)
    if args.text is not None:
        fields["body"] = args.text
    url = f"{args.sandbox_url.rstrip('/')}/_sandbox/customers/{args.wa_id}/messages"
    answer = asyncio.run(_post(args.sandbox_url, url, {"type": args.type, **fields}))
    media = f" (media {answer['media_id']})" if "media_id" in answer else ""
    _emit(args, answer, f"{args.wa_id} sent a {args.type} message: {answer.get('wamid')}{media}")
    return 0


def _customer_open_flow(settings: Settings, args: argparse.Namespace) -> int:
    answers = _answers(args.answers)
    url = f"{args.sandbox_url.rstrip('/')}/_sandbox/customers/{args.wa_id}/flows"
    answer = asyncio.run(_post(args.sandbox_url, url, {"message_id": args.message_id, **answers}))
    screens = " -> ".join(shown["screen"] for shown in answer.get("screens", []))
    if answer.get("error"):
        _emit(args, answer, f"flow {answer.get('flow_name')}: {screens}: {answer['error']}")
        return FAILED
    closed = json.dumps(answer.get("closed_with"))
    _emit(args, answer, f"flow {answer.get('flow_name')}: {screens}: closed with {closed}")
    return 0


def _answers(given: str) -> dict[str, Any]:
    """``{"answers": ...}`` from JSON text or @FILE; a usage error if it is not an object."""
    try:
        text = Path(given[1:]).read_text(encoding="utf-8") if given.startswith("@") else given
        answers = json.loads(text)
    except OSError as exc:
        raise CommandError(f"--answers: cannot read {given[1:]}: {exc.strerror}", USAGE) from None
    except ValueError:
        raise CommandError("--answers: not JSON", USAGE) from None
    if not isinstance(answers, dict):
        raise CommandError('--answers: give {"SCREEN": {"field": "value"}}', USAGE)
    return {"answers": answers}


def _customer_add(settings: Settings, args: argparse.Namespace) -> int:
    url = f"{args.sandbox_url.rstrip('/')}/_sandbox/customers"
    body = {"wa_id": args.wa_id, "name": args.name, "stopped_marketing": args.stopped_marketing}
    answer = asyncio.run(_post(args.sandbox_url, url, body))
    stopped = " (stopped marketing)" if answer.get("stopped_marketing") else ""
    _emit(args, answer, f"customer {answer.get('wa_id')} is {answer.get('name')!r}{stopped}")
    return 0


def _emit(args: argparse.Namespace, answer: dict[str, Any], line: str) -> None:
    print(json.dumps(answer, indent=2) if args.json else line)


async def _post(sandbox_url: str, url: str, body: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    try:
        async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
            text = await response.text()
    except aiohttp.ClientError:
        raise CommandError(
            f"no sandbox answers at {sandbox_url} (start one: `wapipe up`, or give --sandbox-url)",
            UNREACHABLE,
        ) from None
    if response.status != 200:
        raise CommandError(f"the sandbox refused ({response.status}): {text.strip()}", FAILED)
    answer: dict[str, Any] = json.loads(text)
    return answer


def _load(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.sandbox.load import Target, parse_mix, run_load

    require(settings, "app_secrets")
    try:
        mix = parse_mix(args.mix)
    except ValueError as exc:
        raise CommandError(f"--mix: {exc}") from None
    target = Target(args.webhook_url, settings.app_secrets[0])
    report = asyncio.run(run_load(target, args.rate, args.duration, mix, seed=args.seed))
    json.dump(report.summary(), sys.stdout, indent=2)
    print()
    return 0
