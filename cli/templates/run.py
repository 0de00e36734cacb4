"""``wapipe templates``: the WABA's message templates, from the Cloud API and into storage.

    wapipe templates list [--status S] [--json]     every template, page after page
    wapipe templates show NAME|ID [--json]          one template (each language), its history
    wapipe templates create FILE [--json]           a JSON or YAML file, checked before it is sent
    wapipe templates edit ID FILE [--json]          new components and/or category, back to review
    wapipe templates delete NAME [--id ID]          every language, or only the one of that id
    wapipe templates sync [--json]                  store them all, and each status that changed

The WABA is ``WAPIPE_WABA_ID`` (or ``--waba``). ``sync`` writes the templates beside their
webhooks (shared/storage/templates.py): the sender's early check
(``WAPIPE_SENDER_CHECK_TEMPLATES``) reads them.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import msgspec

from wapipe.cli import output as console
from wapipe.cli.database import stored
from wapipe.cli.localsandbox import cloud_api_settings
from wapipe.cli.templates.file import load, load_edit
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.cloudapi.management import all_templates, edit_template, template
from wapipe.shared.cloudapi.nodes import TemplateNode
from wapipe.shared.settings import Settings
from wapipe.shared.storage.database import open_database
from wapipe.shared.storage.templates import store_pulled, template_history

COLUMNS = ("name", "language", "status", "category", "quality", "format", "id")


def run_templates(settings: Settings, args: argparse.Namespace) -> int:
    return console.run(f"templates {args.action}", lambda: _templates(settings, args))


async def _templates(settings: Settings, args: argparse.Namespace) -> int:
    if args.action == "create":
        body = load(args.file)  # checked before any call
    if args.action == "edit":
        body = load_edit(args.file)
    command = f"templates {args.action}"
    settings = cloud_api_settings(settings, command, ("waba_id",), waba_id=args.waba)
    waba_id = settings.waba_id
    async with CloudApi(GraphConfig.from_settings(settings)) as api:
        if args.action == "list":
            return await _list(api, waba_id, args)
        if args.action == "show":
            return await _show(api, settings, waba_id, args)
        if args.action == "create":
            created = await api.create_template(waba_id, body)
            row = (body["name"], body["language"], created.get("status"), created.get("category"))
            shown = console.table(
                "Template created",
                ("name", "language", "status", "category", "id"),
                [(*row, created.get("id"))],
            )
            console.emit(args, created, shown)
            return 0
        if args.action == "edit":
            await edit_template(api, args.id, body)
            shown = console.table(
                "Template edited: back in review", ("id", "changed"), [(args.id, ", ".join(body))]
            )
            console.emit(args, {"edited": args.id, "changes": body}, shown)
            return 0
        if args.action == "delete":
            await api.delete_template(waba_id, args.name, args.id)
            console.emit(
                args,
                {"deleted": args.name, "id": args.id},
                console.table(
                    "Template deleted", ("name", "id"), [(args.name, args.id or "every language")]
                ),
            )
            return 0
        return await _sync(api, settings, waba_id, args)


async def _pull(
    api: CloudApi, waba_id: str, args: argparse.Namespace
) -> tuple[list[TemplateNode], Any]:
    with console.PullProgress(args, "templates") as progress:
        return await all_templates(api, waba_id, limit=args.page_size, on_page=progress)


def _row(t: TemplateNode) -> tuple[Any, ...]:
    return (t.name, t.language, t.status, t.category, t.quality, t.parameter_format, t.id)


async def _list(api: CloudApi, waba_id: str, args: argparse.Namespace) -> int:
    found, summary = await _pull(api, waba_id, args)
    if args.status:
        found = [t for t in found if t.status == args.status.upper()]
    limit = summary.message_template_limit if summary is not None else None
    title = f"{len(found)} templates of WABA {waba_id}" + (f" (limit {limit})" if limit else "")
    value = {"templates": found, "summary": summary}
    console.emit(args, value, console.table(title, COLUMNS, [_row(t) for t in found]))
    return 0


async def _show(api: CloudApi, settings: Settings, waba_id: str, args: argparse.Namespace) -> int:
    wanted: str = args.template
    if wanted.isdigit():
        found = [await template(api, wanted)]
    else:
        found = [t for t in (await _pull(api, waba_id, args))[0] if t.name == wanted]
        if not found:
            raise console.CommandError(f"no template named {wanted} in WABA {waba_id}", 1)
    history: dict[str, list[Any]] = {t.id: [] for t in found}
    if stored(settings.database_url):  # a look is no reason to make a database
        async with open_database(settings.database_url) as engine:
            history = {t.id: list(await template_history(engine, t.id)) for t in found}
    tables = [console.table(f"Template {wanted}", COLUMNS, [_row(t) for t in found])]
    for t in found:
        components = [(c.get("type"), c.get("format"), _text(c)) for c in t.components]
        tables.append(
            console.table(
                f"{t.name} ({t.language}): components", ("type", "format", "text"), components
            )
        )
        rows = [
            (time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(h.at)), h.status, h.reason, h.source)
            for h in history[t.id]
        ]
        tables.append(
            console.table(
                f"{t.name} ({t.language}): status history (UTC)",
                ("at", "status", "reason", "from"),
                rows,
            )
        )
    value = [{"template": t, "history": history[t.id]} for t in found]
    console.emit(args, value, *tables)
    return 0


def _text(component: dict[str, Any]) -> Any:
    """A component's text; a button list as one ``TYPE: label`` a line."""
    buttons = component.get("buttons") or []
    shown = [f"{b.get('type')}: {b.get('text') or b.get('url') or ''}".strip() for b in buttons]
    return component.get("text") or "\n".join(shown)


async def _sync(api: CloudApi, settings: Settings, waba_id: str, args: argparse.Namespace) -> int:
    found, _ = await _pull(api, waba_id, args)
    async with open_database(settings.database_url) as engine:
        changes = await store_pulled(engine, waba_id, found, time.time())
    rows = [(c.name, c.language, c.before or "(new)", c.after, c.reason) for c in changes]
    title = f"{len(found)} templates stored, {len(changes)} status changes"
    shown = console.table(title, ("name", "language", "was", "now", "reason"), rows)
    console.emit(args, {"stored": len(found), "changes": msgspec.to_builtins(changes)}, shown)
    return 0
