"""``wapipe topology [--remove --yes]``: declare (or delete) the broker's exchanges and queues,
as shared/topology.py describes them."""

from __future__ import annotations

import argparse
import asyncio
import logging

from wapipe.cli.command import Commands
from wapipe.cli.errors import CommandError
from wapipe.shared.settings import Settings

log = logging.getLogger("wapipe")


def register(commands: Commands) -> None:
    topology = commands.add_parser(
        "topology", help="declare the broker's exchanges and queues (idempotent; once per deploy)"
    )
    topology.add_argument(
        "--remove", action="store_true", help="delete them instead, with every message they hold"
    )
    topology.add_argument("--yes", action="store_true", help="confirm --remove")
    topology.set_defaults(run=_topology, service="topology")


def _topology(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.shared.topology import declare_at, remove_at

    if args.remove:
        if not args.yes:
            raise CommandError("--remove deletes every queue and what it holds: add --yes")
        asyncio.run(remove_at(settings.amqp_url))
        print("removed every wapipe queue and exchange")
        return 0
    asyncio.run(declare_at(settings.amqp_url))
    log.info("topology declared")
    return 0
