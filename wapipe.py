"""The ``wapipe`` command. The one place that imports every service, each lazily, so that
``wapipe ingress`` never loads worker code.

    wapipe ingress [--host H] [--port P]   the webhook receiver
    wapipe topology                        declare exchanges and queues (deploy jobs)
    wapipe up                              the whole local system, one process per service
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Sequence
from typing import Final

import aiormq
import msgspec

from shared import logs
from shared.settings import Settings, SettingsError, from_env
from shared.topology import declare_at

log = logging.getLogger("wapipe")


def _ingress(settings: Settings, args: argparse.Namespace) -> int:
    from ingress.app import run

    overrides = {"ingress_host": args.host, "ingress_port": args.port}
    run(
        msgspec.structs.replace(
            settings, **{name: value for name, value in overrides.items() if value is not None}
        )
    )
    return 0


def _topology(settings: Settings, args: argparse.Namespace) -> int:
    asyncio.run(declare_at(settings.amqp_url))
    log.info("topology declared")
    return 0


# `wapipe up`: the services of a local run, each its own process, as in production.
LOCAL_SERVICES: Final = (("ingress",),)
# Used only by `wapipe up` when the variable is unset, so a fresh clone runs with no setup.
LOCAL_DEFAULTS: Final = {
    "WAPIPE_APP_SECRETS": "local-app-secret",
    "WAPIPE_VERIFY_TOKEN": "local-verify-token",
}


def _up(settings: Settings, args: argparse.Namespace) -> int:
    env = dict(os.environ)
    for name, value in LOCAL_DEFAULTS.items():
        if not env.get(name) and not env.get(name + "_FILE"):
            env[name] = value
            log.info("local default", extra={"variable": name})
    asyncio.run(declare_at(settings.amqp_url))
    return asyncio.run(_supervise(env))


async def _supervise(env: dict[str, str]) -> int:
    """Run every service until one exits or we are told to stop; then stop them all."""
    children = [
        await asyncio.create_subprocess_exec(sys.executable, "-m", "wapipe", *service, env=env)
        for service in LOCAL_SERVICES
    ]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    exits = [asyncio.create_task(child.wait()) for child in children]
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait([*exits, stopping], return_when=asyncio.FIRST_COMPLETED)
    for child in children:
        if child.returncode is None:
            child.terminate()
    codes = await asyncio.gather(*(child.wait() for child in children))
    stopping.cancel()
    return 0 if stop.is_set() else max(codes, key=abs) or 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wapipe", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ingress = commands.add_parser("ingress", help="run the webhook ingress")
    ingress.add_argument("--host", help="listen address (WAPIPE_INGRESS_HOST)")
    ingress.add_argument("--port", type=int, help="listen port (WAPIPE_INGRESS_PORT)")
    ingress.set_defaults(run=_ingress, service="ingress")
    commands.add_parser("topology", help="declare the broker topology").set_defaults(
        run=_topology, service="topology"
    )
    commands.add_parser("up", help="run the whole system locally").set_defaults(
        run=_up, service="up"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = from_env()
    except SettingsError as exc:
        print(f"wapipe: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup(settings.log_level, settings.log_format, args.service)
    try:
        code: int = args.run(settings, args)
    except SettingsError as exc:
        print(f"wapipe: configuration error: {exc}", file=sys.stderr)
        return 2
    except (OSError, aiormq.exceptions.AMQPConnectionError) as exc:
        print(f"wapipe: cannot reach the broker at WAPIPE_AMQP_URL: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
