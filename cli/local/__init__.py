"""``wapipe up`` and ``wapipe demo``: the whole system on this machine (cli/local/up.py), and a
customer talking to the example bot through it (cli/local/demo.py). They live in cli/ because
they are commands for a person at a terminal: they parse options, start processes as a user
would, and print for people; no service imports them."""

from __future__ import annotations

import argparse
import os

from wapipe.cli.command import Commands
from wapipe.cli.errors import FAILED, CommandError
from wapipe.shared.settings import Settings


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.cli.local.up import UpError, run

    try:
        return run(settings, os.environ)
    except UpError as exc:
        raise CommandError(str(exc), FAILED) from None


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from wapipe.cli.local.demo import run

    return run(settings, args.sandbox_url, args.customer, args.timeout)


def register(commands: Commands) -> None:
    commands.add_parser(
        "up",
        help="run the whole system here: ingress, workers, sender, and the sandbox as the "
        "Cloud API (unless WAPIPE_GRAPH_URL points elsewhere)",
    ).set_defaults(run=_up, service="up")
    demo = commands.add_parser(
        "demo",
        help="with `wapipe up` running: a customer talks to the example bot; prints the "
        "transcript with statuses and the stored image",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    demo.add_argument("--sandbox-url", default="http://127.0.0.1:8090", help="the sandbox")
    demo.add_argument("--customer", default="16315551181", help="the customer who writes")
    demo.add_argument("--timeout", type=float, default=30.0, help="seconds to wait per reply")
    demo.set_defaults(run=_demo, service="demo")
