"""The ``wapipe`` command: the parser built from every command group, and the one error path.

Each group is a module (or package) of cli/ with a ``register(commands)`` function; ``GROUPS``
below is the one list of them. Registering imports nothing heavy (cli/command.py says the rule):
a command's services and libraries are imported when it runs, so ``wapipe ingress`` never loads
worker or CLI-only code. Whatever a command raises that cli/errors.py knows becomes one line on
stderr and an exit status from its table. ``HELP`` is what ``wapipe --help`` shows.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Final

from wapipe.cli import (
    analytics,
    block,
    dlq,
    flows,
    history,
    local,
    numbers,
    profile,
    report,
    sandbox,
    send,
    services,
    templates,
    topology,
)
from wapipe.cli.command import Commands
from wapipe.cli.errors import INTERRUPTED, USAGE, explain, fail
from wapipe.cli.helpformat import Parser, with_help_formatter
from wapipe.shared import logs
from wapipe.shared.settings import from_env

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

GROUPS: Final[tuple[Callable[[Commands], None], ...]] = (
    local.register,  # up, demo
    send.register,
    history.register,  # jobs, conversation
    templates.register,
    profile.register,
    numbers.register,
    block.register,
    flows.register,
    analytics.register,
    report.register,
    dlq.register,
    topology.register,
    services.register,  # ingress, worker, migrate
    sandbox.register,  # sandbox, sandbox customer, sandbox load
)

# One-shot commands: a library's log lines would only come before our one line.
QUIET_LIBRARIES: Final = ("aiormq", "aio_pika", "matplotlib", "PIL")
SERVICES: Final = frozenset({"ingress", "sandbox", "worker", "load"})


def build_parser() -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = Parser(
        prog="wapipe", description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in GROUPS:
        register(commands)
    _name_commands(parser)
    return with_help_formatter(parser)


def _name_commands(parser: argparse.ArgumentParser) -> None:
    """Each command knows its own name (``wapipe templates list``), the prefix of its errors: the
    deepest subparser's default wins."""
    parser.set_defaults(command_name=parser.prog)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in set(action.choices.values()):
                _name_commands(sub)


def main(argv: Sequence[str] | None = None) -> int:
    args, unknown = build_parser().parse_known_args(argv)
    name: str = args.command_name
    if unknown:  # said by the command they were given to, not by `wapipe`
        return fail(
            name, f"unrecognized arguments: {' '.join(unknown)} (see `{name} --help`)", USAGE
        )
    try:
        settings = from_env()
        logs.setup(settings.log_level, settings.log_format, args.service)
        if args.service not in SERVICES:
            for library in QUIET_LIBRARIES:
                logging.getLogger(library).setLevel(logging.CRITICAL + 1)
        code: int = args.run(settings, args)
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception as exc:
        known = explain(exc, " ".join([args.service, *([args.kind] if "kind" in args else [])]))
        if known is None:
            raise
        return fail(name, *known)
    return code


def entry() -> None:
    """The console script: ``wapipe`` (pyproject's [project.scripts])."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
