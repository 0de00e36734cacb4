"""``wapipe ingress``, ``wapipe worker KIND`` and ``wapipe migrate``: the long-running services
and the schema. Each run function imports its service only when it runs, so ``wapipe ingress``
never loads worker code."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
from typing import Final

import msgspec

from wapipe.cli.command import Commands
from wapipe.shared.settings import Settings

log = logging.getLogger("wapipe")

WORKERS: Final = {
    "status": "wapipe.workers.status",
    "message": "wapipe.workers.message",
    "account": "wapipe.workers.account",
    "media": "wapipe.workers.media",
    "sender": "wapipe.workers.sender",
    "flows": "wapipe.workers.flows",
}


def register(commands: Commands) -> None:
    ingress = commands.add_parser("ingress", help="run the webhook ingress")
    ingress.add_argument("--host", help="listen address (WAPIPE_INGRESS_HOST)")
    ingress.add_argument("--port", type=int, help="listen port (WAPIPE_INGRESS_PORT)")
    ingress.set_defaults(run=_ingress, service="ingress")
    worker = commands.add_parser(
        "worker", help="run a worker: status, message, account, media, sender or flows"
    )
    worker.add_argument("kind", choices=sorted(WORKERS), help="which worker")
    worker.add_argument("--metrics-port", type=int, help="metrics port (WAPIPE_METRICS_PORT)")
    worker.set_defaults(run=_worker, service="worker")
    commands.add_parser("migrate", help="bring the database schema up to date").set_defaults(
        run=_migrate, service="migrate"
    )


def _ingress(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.ingress.app import run

    overrides = {"ingress_host": args.host, "ingress_port": args.port}
    run(
        msgspec.structs.replace(
            settings, **{name: value for name, value in overrides.items() if value is not None}
        )
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.workers.main import run

    if args.metrics_port is not None:
        settings = msgspec.structs.replace(settings, metrics_port=args.metrics_port)
    run(importlib.import_module(WORKERS[args.kind]).KIND, settings)
    return 0


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.shared.storage.database import head_revision, open_database

    async def upgrade() -> None:
        async with open_database(settings.database_url):
            pass

    asyncio.run(upgrade())
    log.info("database schema up to date", extra={"revision": head_revision()})
    return 0
