"""The ``wapipe`` command. The one place that imports every service, each lazily, so that
``wapipe ingress`` never loads worker code. ``HELP`` is what ``wapipe --help`` shows.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import Final

import aiormq
import msgspec

from localrun.cli import add_local_parsers
from shared import logs
from shared.account_parsers import add_account_commands
from shared.cli_help import with_help_formatter
from shared.failures import explain
from shared.flows_cli import add_flows_commands
from shared.history_cli import add_history_parsers
from shared.send_cli import add_send_parser
from shared.settings import Settings, SettingsError, from_env, require
from shared.topology import declare_at
from workers.dlq_cli import add_dlq_parser

log = logging.getLogger("wapipe")

HELP: Final = """\
wapipe: WhatsApp Business Cloud API webhooks in, typed events on RabbitMQ, messages out.

Start here (RabbitMQ on 127.0.0.1:5672; no Meta account needed):
  wapipe up                         everything on this machine, the sandbox playing Meta
  wapipe demo                       a customer talks to the example bot; prints the transcript
  wapipe send text --to 16315551181 --body "hi" --wait
  wapipe conversation 16315551181   both directions, with statuses
  then open http://127.0.0.1:8090/_sandbox/console/

Settings are environment variables (WAPIPE_*, see the README); `wapipe COMMAND --help` for more.
"""

# One-shot commands: a library's log lines would only come before our one line.
QUIET_LIBRARIES: Final = ("aiormq", "aio_pika")
SERVICES: Final = frozenset({"ingress", "sandbox", "worker", "load"})


def _ingress(settings: Settings, args: argparse.Namespace) -> int:
    from ingress.app import run

    overrides = {"ingress_host": args.host, "ingress_port": args.port}
    run(
        msgspec.structs.replace(
            settings, **{name: value for name, value in overrides.items() if value is not None}
        )
    )
    return 0


def _sandbox(settings: Settings, args: argparse.Namespace) -> int:
    from sandbox.app import run as run_sandbox
    from sandbox.config import EXAMPLE_TEMPLATE, SandboxConfig
    from sandbox.webhooks import Chaos, Retry

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
        raise SettingsError(str(exc)) from None
    run_sandbox(settings, config)
    return 0


def _sandbox_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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


def _customer_parser(clients: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    customer = clients.add_parser("customer", help="act as a customer of a running sandbox")
    customer.add_argument(
        "--sandbox-url", default="http://127.0.0.1:8090", help="the running sandbox"
    )
    actions = customer.add_subparsers(dest="customer_command", required=True)
    send = actions.add_parser("send", help="the customer sends a message (a signed webhook)")
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
    add = actions.add_parser("add", help="add a customer, or change one")
    add.add_argument("wa_id", help="the customer's WhatsApp id (digits)")
    add.add_argument("name", help="their profile name")
    add.add_argument(
        "--stopped-marketing",
        action="store_true",
        help="they chose to receive no marketing (templates of that category fail: 131050)",
    )
    add.set_defaults(run=_customer_add, service="customer")


def _customer_send(settings: Settings, args: argparse.Namespace) -> int:
    from sandbox.cli import customer_send, parse_fields

    fields = parse_fields(args.field)
    if args.text is not None:
        fields["body"] = args.text
    return asyncio.run(customer_send(args.sandbox_url, args.wa_id, args.type, fields))


def _customer_add(settings: Settings, args: argparse.Namespace) -> int:
    from sandbox.cli import customer_add

    return asyncio.run(
        customer_add(args.sandbox_url, args.wa_id, args.name, args.stopped_marketing)
    )


def _load(settings: Settings, args: argparse.Namespace) -> int:
    from sandbox.cli import load

    require(settings, "app_secrets")
    return load(
        args.webhook_url, settings.app_secrets[0], args.rate, args.duration, args.mix, args.seed
    )


WORKERS: Final = {
    "status": "workers.status",
    "message": "workers.message",
    "account": "workers.account",
    "media": "workers.media",
    "sender": "workers.sender",
    "flows": "workers.flows",
}


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    import importlib

    from shared.storage.database import DatabaseUnreachable
    from workers.main import run

    if args.metrics_port is not None:
        settings = msgspec.structs.replace(settings, metrics_port=args.metrics_port)
    try:
        run(importlib.import_module(WORKERS[args.kind]).KIND, settings)
    except DatabaseUnreachable as exc:
        return _database_failed(exc)
    return 0


def _database_failed(error: Exception) -> int:
    print(f"wapipe: cannot use the database at WAPIPE_DATABASE_URL: {error}", file=sys.stderr)
    return 1


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from shared.storage.database import DatabaseUnreachable, head_revision, open_database

    async def upgrade() -> None:
        async with open_database(settings.database_url):
            pass

    try:
        asyncio.run(upgrade())
    except DatabaseUnreachable as exc:
        return _database_failed(exc)
    log.info("database schema up to date", extra={"revision": head_revision()})
    return 0


def _topology(settings: Settings, args: argparse.Namespace) -> int:
    if args.remove:
        if not args.yes:
            print(
                "wapipe topology: --remove deletes every queue and what it holds: add --yes",
                file=sys.stderr,
            )
            return 2
        from shared.topology import remove_at

        asyncio.run(remove_at(settings.amqp_url))
        print("removed every wapipe queue and exchange")
        return 0
    asyncio.run(declare_at(settings.amqp_url))
    log.info("topology declared")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wapipe", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    ingress = commands.add_parser("ingress", help="run the webhook ingress")
    ingress.add_argument("--host", help="listen address (WAPIPE_INGRESS_HOST)")
    ingress.add_argument("--port", type=int, help="listen port (WAPIPE_INGRESS_PORT)")
    ingress.set_defaults(run=_ingress, service="ingress")
    _sandbox_parser(commands)
    worker = commands.add_parser(
        "worker", help="run a worker: status, message, account, media, sender or flows"
    )
    worker.add_argument("kind", choices=sorted(WORKERS), help="which worker")
    worker.add_argument("--metrics-port", type=int, help="metrics port (WAPIPE_METRICS_PORT)")
    worker.set_defaults(run=_worker, service="worker")
    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        run=_migrate, service="migrate"
    )
    topology = commands.add_parser(
        "topology", help="declare the broker's exchanges and queues (idempotent; once per deploy)"
    )
    topology.add_argument(
        "--remove", action="store_true", help="delete them instead, with every message they hold"
    )
    topology.add_argument("--yes", action="store_true", help="confirm --remove")
    topology.set_defaults(run=_topology, service="topology")
    add_local_parsers(commands)
    add_dlq_parser(commands)
    add_send_parser(commands)
    add_history_parsers(commands)
    add_account_commands(commands)
    add_flows_commands(commands)
    return with_help_formatter(parser)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = from_env()
    except SettingsError as exc:
        print(f"wapipe: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_format, args.service)
    if args.service not in SERVICES:
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    try:
        code: int = args.run(settings, args)
    except SettingsError as exc:
        print(f"wapipe: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except (OSError, aiormq.exceptions.AMQPError) as exc:
        known = explain(exc, " ".join([args.service, *([args.kind] if "kind" in args else [])]))
        if known is None:
            raise
        print(f"wapipe: {known[0]}", file=sys.stderr)
        return known[1]
    return code


if __name__ == "__main__":
    sys.exit(main())
