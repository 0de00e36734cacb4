"""``wapipe flows``: what each action does (registered in cli/flows/__init__.py).

The Graph API's answers are printed as JSON: they are Meta's documents, read by people and
programs alike.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from wapipe.cli import output as console
from wapipe.cli.errors import CommandError
from wapipe.cli.localsandbox import cloud_api_settings
from wapipe.shared.cloudapi.client import GraphConfig
from wapipe.shared.flows import keys
from wapipe.shared.flows.flow_json import problems
from wapipe.shared.flows.graph import FlowsApi
from wapipe.shared.settings import Settings


def run_flows(settings: Settings, args: argparse.Namespace) -> int:
    name = f"flows {args.action}" + (f" {args.verb}" if args.action == "keys" else "")
    if args.action == "keys" and args.verb == "generate":
        return console.run(name, lambda: _generate(args))
    return console.run(name, lambda: _call(settings, args))


async def _generate(args: argparse.Namespace) -> int:
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
    name = f"flows {args.action}"
    if args.action == "keys":
        settings = cloud_api_settings(
            settings, name, ("phone_number_id",), phone_number_id=args.phone_number_id
        )
    elif args.action in ("list", "create"):
        settings = cloud_api_settings(settings, name, ("waba_id",), waba_id=args.waba)
    else:
        settings = cloud_api_settings(settings, name)
    async with FlowsApi(GraphConfig.from_settings(settings)) as api:
        answer = await _dispatch(api, settings, args)
    print(json.dumps(answer, indent=2))
    return 0


async def _dispatch(api: FlowsApi, settings: Settings, args: argparse.Namespace) -> Any:
    if args.action == "keys":
        number = settings.phone_number_id
        if args.verb == "show":
            return await api.public_key(number)
        return await api.set_public_key(number, _public_pem(args.public_key))
    if args.action in ("list", "create"):
        return await _on_waba(api, settings.waba_id, args)
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
    try:
        flow = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise CommandError(f"{path}: not JSON: {exc}") from None
    if found := problems(flow):
        raise CommandError(f"{path}: {'; '.join(found)}")
    return flow


def _public_pem(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    try:
        keys.load_public(text)
    except keys.FlowKeyError as exc:
        raise CommandError(f"{path}: {exc}") from None
    return text
