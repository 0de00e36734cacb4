"""``wapipe flows``: the endpoint's keys and the WABA's flows through the Graph API
(docs/flows.md). Self-contained: ``add_flows_commands`` registers it; what it runs is imported
only when it runs.

    wapipe flows keys generate [--out DIR] [--passphrase-env NAME]   a 2048-bit pair, as PEM
    wapipe flows keys upload [--public-key FILE] [--from ID]         set on the number
    wapipe flows keys show [--from ID]                                what the number has
    wapipe flows list|show|create|update|publish|deprecate|delete    the Flows API
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from shared.settings import Settings, require

if TYPE_CHECKING:
    from shared.flows.graph import FlowsApi

Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
CATEGORIES = (
    "SIGN_UP", "SIGN_IN", "APPOINTMENT_BOOKING", "LEAD_GENERATION", "CONTACT_US",
    "CUSTOMER_SUPPORT", "SURVEY", "OTHER",
)  # fmt: skip


def add_flows_commands(commands: Commands) -> None:
    flows = commands.add_parser("flows", help="WhatsApp Flows: the endpoint's keys, the flows")
    actions = flows.add_subparsers(dest="action", required=True, metavar="ACTION")
    _keys_parser(actions)
    waba = argparse.ArgumentParser(add_help=False)
    waba.add_argument("--waba", help="the WABA id (default: WAPIPE_WABA_ID)")
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
    flows.set_defaults(run=run_flows, service="flows")


def _keys_parser(actions: Commands) -> None:
    keys = actions.add_parser("keys", help="the endpoint's RSA key pair")
    verbs = keys.add_subparsers(dest="verb", required=True, metavar="VERB")
    generate = verbs.add_parser("generate", help="write private.pem and public.pem")
    generate.add_argument("--out", type=Path, default=Path("var/flows"), help="the folder")
    generate.add_argument(
        "--passphrase-env", help="encrypt the private key with this variable's value"
    )
    number = argparse.ArgumentParser(add_help=False)
    number.add_argument("--from", dest="phone_number_id", help="default WAPIPE_PHONE_NUMBER_ID")
    upload = verbs.add_parser("upload", parents=[number], help="set the public key on a number")
    upload.add_argument(
        "--public-key", type=Path, default=Path("var/flows/public.pem"), help="its PEM file"
    )
    verbs.add_parser("show", parents=[number], help="the public key a number has")


def run_flows(settings: Settings, args: argparse.Namespace) -> int:
    from shared import console

    name = f"flows {args.action}" + (f" {args.verb}" if args.action == "keys" else "")
    if args.action == "keys" and args.verb == "generate":
        return console.run(name, lambda: _generate(args))
    return console.run(name, lambda: _call(settings, args))


async def _generate(args: argparse.Namespace) -> int:
    from shared.console import CommandError
    from shared.flows import keys

    passphrase = ""
    if args.passphrase_env:
        passphrase = os.environ.get(args.passphrase_env, "")
        if not passphrase:
            raise CommandError(f"--passphrase-env: {args.passphrase_env} is unset or empty")
    try:
        private_path, public_path = keys.write_pair(args.out, passphrase)
    except keys.FlowKeyError as exc:
        raise CommandError(str(exc)) from None
    print(f"wrote {private_path} (set WAPIPE_FLOWS_PRIVATE_KEY_FILE to it) and {public_path}")
    return 0


async def _call(settings: Settings, args: argparse.Namespace) -> int:
    from shared.cloudapi.client import GraphConfig
    from shared.flows.graph import FlowsApi

    require(settings, "access_token")
    async with FlowsApi(GraphConfig.from_settings(settings)) as api:
        answer = await _dispatch(api, settings, args)
    print(json.dumps(answer, indent=2))
    return 0


async def _dispatch(api: FlowsApi, settings: Settings, args: argparse.Namespace) -> Any:
    if args.action == "keys":
        number = _number(settings, args)
        if args.verb == "show":
            return await api.public_key(number)
        return await api.set_public_key(number, _public_pem(args.public_key))
    if args.action in ("list", "create"):
        return await _on_waba(api, _waba(settings, args), args)
    calls = {
        "show": api.flow,
        "publish": api.publish_flow,
        "deprecate": api.deprecate_flow,
        "delete": api.delete_flow,
    }
    if args.action in calls:
        return await calls[args.action](args.flow_id)
    return await _update(api, args)


async def _on_waba(api: FlowsApi, waba_id: str, args: argparse.Namespace) -> Any:
    if args.action == "list":
        return await api.flows(waba_id)
    categories = args.category or ["OTHER"]
    return await api.create_flow(
        waba_id, args.name, categories, _flow_json(args.file), args.endpoint_uri
    )


async def _update(api: FlowsApi, args: argparse.Namespace) -> Any:
    from shared.console import CommandError

    metadata = {
        key: value
        for key, value in (("name", args.name), ("endpoint_uri", args.endpoint_uri))
        if value
    }
    if args.file is None and not metadata:
        raise CommandError("flows update: give --file, --name or --endpoint-uri")
    answers = {}
    if args.file is not None:
        answers["assets"] = await api.update_flow_json(args.flow_id, _flow_json(args.file))
    if metadata:
        answers["metadata"] = await api.update_flow(args.flow_id, metadata)
    return answers


def _flow_json(path: Path) -> Any:
    from shared.console import CommandError
    from shared.flows.flow_json import problems

    try:
        flow = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CommandError(f"{path}: not JSON: {exc}") from None
    if found := problems(flow):
        raise CommandError(f"{path}: {'; '.join(found)}")
    return flow


def _public_pem(path: Path) -> str:
    from shared.console import CommandError
    from shared.flows.keys import FlowKeyError, load_public

    text = path.read_text(encoding="utf-8")
    try:
        load_public(text)
    except FlowKeyError as exc:
        raise CommandError(f"{path}: {exc}") from None
    return text


def _number(settings: Settings, args: argparse.Namespace) -> str:
    from shared.console import CommandError

    number: str = args.phone_number_id or settings.phone_number_id
    if not number:
        raise CommandError("give --from (a phone number id) or set WAPIPE_PHONE_NUMBER_ID")
    return number


def _waba(settings: Settings, args: argparse.Namespace) -> str:
    from shared.console import CommandError

    waba_id: str = args.waba or settings.waba_id
    if not waba_id:
        raise CommandError("give --waba or set WAPIPE_WABA_ID")
    return waba_id
