"""``wapipe flows``: the endpoint's keys and the WABA's flows through the Graph API
(docs/flows.md; the work in cli/flows/run.py).

    wapipe flows keys generate [--out DIR] [--passphrase-env NAME]   a 2048-bit pair, as PEM
    wapipe flows keys upload [--public-key FILE] [--from ID]         set on the number
    wapipe flows keys show [--from ID]                                what the number has
    wapipe flows list|show|create|update|publish|deprecate|delete    the Flows API
"""

from __future__ import annotations

import argparse
from pathlib import Path

from wapipe.cli.command import Commands, lazy

CATEGORIES = (
    "SIGN_UP", "SIGN_IN", "APPOINTMENT_BOOKING", "LEAD_GENERATION", "CONTACT_US",
    "CUSTOMER_SUPPORT", "SURVEY", "OTHER",
)  # fmt: skip


def register(commands: Commands) -> None:
    flows = commands.add_parser("flows", help="WhatsApp Flows: the endpoint's keys, the flows")
    actions = flows.add_subparsers(dest="action", required=True, metavar="ACTION")
    _keys_parser(actions)
    waba = argparse.ArgumentParser(add_help=False)
    waba.add_argument(
        "--waba", help="the WABA id (default: WAPIPE_WABA_ID, else the local sandbox's)"
    )
    one = argparse.ArgumentParser(add_help=False)
    one.add_argument("flow_id", help="the flow's id")
    actions.add_parser("list", parents=[waba], help="every flow of the WABA")
    actions.add_parser("show", parents=[one], help="one flow: status, errors, health")
    create = actions.add_parser("create", parents=[waba], help="a draft flow from a Flow JSON")
    create.add_argument("name", help="the flow's name (unique in the WABA)")
    create.add_argument("file", type=Path, help="its Flow JSON (checked first)")
    create.add_argument("--category", action="append", choices=CATEGORIES, help="repeat")
    create.add_argument("--endpoint-uri", help="its data endpoint, e.g. https://host/flows")
    update = actions.add_parser("update", parents=[one], help="a draft's Flow JSON or details")
    update.add_argument("--file", type=Path, help="a new Flow JSON (checked first)")
    update.add_argument("--name", help="a new name")
    update.add_argument("--endpoint-uri", help="a new data endpoint")
    for action, meaning in (
        ("publish", "publish a draft (for good: it cannot change after)"),
        ("deprecate", "stop a published flow from being sent or opened"),
        ("delete", "delete a draft"),
    ):
        actions.add_parser(action, parents=[one], help=meaning)
    flows.set_defaults(run=lazy("wapipe.cli.flows.run", "run_flows"), service="flows")


def _keys_parser(actions: Commands) -> None:
    keys = actions.add_parser("keys", help="the endpoint's RSA key pair")
    verbs = keys.add_subparsers(dest="verb", required=True, metavar="VERB")
    generate = verbs.add_parser("generate", help="write private.pem and public.pem")
    generate.add_argument("--out", type=Path, default=Path("var/flows"), help="the folder")
    generate.add_argument(
        "--passphrase-env", help="encrypt the private key with this variable's value"
    )
    number = argparse.ArgumentParser(add_help=False)
    number.add_argument(
        "--from",
        dest="phone_number_id",
        help="the number's phone number id (default: WAPIPE_PHONE_NUMBER_ID, else the local "
        "sandbox's)",
    )
    upload = verbs.add_parser("upload", parents=[number], help="set the public key on a number")
    upload.add_argument(
        "--public-key", type=Path, default=Path("var/flows/public.pem"), help="its PEM file"
    )
    verbs.add_parser("show", parents=[number], help="the public key a number has")
