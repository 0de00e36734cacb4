"""``wapipe up`` and ``wapipe demo``: their options. Registered by wapipe.py:
``add_local_parsers(commands)``; each imports its module only when run."""

from __future__ import annotations

import argparse
import os
import sys

from shared.settings import Settings


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from localrun.up import UpError, run

    try:
        return run(settings, os.environ)
    except UpError as exc:
        print(f"wapipe up: {exc}", file=sys.stderr)
        return 1


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from localrun.demo import run

    return run(settings, args.sandbox_url, args.customer, args.timeout)


def add_local_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
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
