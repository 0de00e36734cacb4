"""``wapipe templates list|show|create|edit|delete|sync``: the WABA's message templates (the work in
cli/templates/run.py, the file check in cli/templates/file.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from wapipe.cli.command import Commands, add_json_flag, lazy


def register(commands: Commands) -> None:
    parser = commands.add_parser("templates", help="the WABA's message templates")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--waba", help="the WABA id (default: WAPIPE_WABA_ID, else the local sandbox's)"
    )
    common.add_argument("--page-size", type=int, default=100, help="templates per call")
    add_json_flag(common)
    listing = actions.add_parser("list", parents=[common], help="every template, with status")
    listing.add_argument("--status", help="only these: APPROVED, PENDING, REJECTED, ...")
    show = actions.add_parser("show", parents=[common], help="one template by name or id")
    show.add_argument("template", help="its name (every language) or its id")
    create = actions.add_parser("create", parents=[common], help="create from a JSON/YAML file")
    create.add_argument("file", type=Path, help="the template, as JSON or YAML (checked first)")
    edit = actions.add_parser("edit", parents=[common], help="new components or category")
    edit.add_argument("id", help="the template's id")
    edit.add_argument("file", type=Path, help="JSON/YAML with components and/or category")
    delete = actions.add_parser("delete", parents=[common], help="delete a template")
    delete.add_argument("name", help="the template's name")
    delete.add_argument("--id", help="only the language of this template id")
    actions.add_parser("sync", parents=[common], help="store every template and change")
    parser.set_defaults(run=lazy("wapipe.cli.templates.run", "run_templates"), service="templates")
