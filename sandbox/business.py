"""Templates and the business profile (docs/cloudapi/templates.md, business.md).

    GET    /{version}/{waba-id}/message_templates     list (name, status, language, limit, after)
    POST   /{version}/{waba-id}/message_templates     create: PENDING, then reviewed
    DELETE /{version}/{waba-id}/message_templates     ?name= (all languages) [&hsm_id=] (one)
    GET    /{version}/{phone-number-id}/whatsapp_business_profile
    POST   /{version}/{phone-number-id}/whatsapp_business_profile

Review: a template is approved ``REVIEW_S`` after creation, unless its name starts with
``reject`` (then REJECTED, reason INVALID_FORMAT); ``POST /_sandbox/templates/{id}/review`` decides
at once instead. Each decision sends the ``message_template_status_update`` webhook.
"""

from __future__ import annotations

import asyncio
import functools
import re
from typing import Any, Final

from aiohttp import web

from wapipe.sandbox import errors, flows
from wapipe.sandbox.json_checks import json_body, object_at
from wapipe.sandbox.keys import SENDER, WORLD
from wapipe.sandbox.state import Template
from wapipe.sandbox.template_rules import check_edit, check_examples
from wapipe.sandbox.templates import template_spec

NAME: Final = re.compile(r"^[a-z0-9_]{1,512}$")
CATEGORIES: Final = ("MARKETING", "UTILITY", "AUTHENTICATION")
VERTICALS: Final = frozenset(
    [
        "UNDEFINED",
        "OTHER",
        "AUTO",
        "BEAUTY",
        "APPAREL",
        "EDU",
        "ENTERTAIN",
        "EVENT_PLAN",
        "FINANCE",
        "GROCERY",
        "GOVT",
        "HOTEL",
        "HEALTH",
        "NONPROFIT",
        "PROF_SERVICES",
        "RETAIL",
        "TRAVEL",
        "RESTAURANT",
        "ALCOHOL",
        "ONLINE_GAMBLING",
        "PHYSICAL_GAMBLING",
        "OTC_DRUGS",
    ]
)
PROFILE_LIMITS: Final = {"about": 139, "address": 256, "description": 512, "email": 128}
REVIEW_S: Final = 0.2
TEMPLATE_LIMIT: Final = 250  # an unverified portfolio's (docs/cloudapi/templates.md)


def routes() -> list[web.RouteDef]:
    return [
        web.get("/{version}/{waba_id}/message_templates", list_templates),
        web.post("/{version}/{waba_id}/message_templates", create_template),
        web.delete("/{version}/{waba_id}/message_templates", delete_templates),
        web.post("/{version}/{node_id}", update_node),
        web.get("/{version}/{phone_number_id}/whatsapp_business_profile", read_profile),
        web.post("/{version}/{phone_number_id}/whatsapp_business_profile", update_profile),
    ]


async def _json_object(request: web.Request) -> dict[str, Any]:
    return object_at(await json_body(request), "the request body")


async def list_templates(request: web.Request) -> web.Response:
    """The WABA's templates, filtered and paged; ``fields`` picks the keys of each, and
    ``summary`` adds the counts and the WABA's limit (docs/cloudapi/templates.md)."""
    world = request.app[WORLD]
    business = world.waba(request.match_info["waba_id"])
    query = request.query
    filters = ("name", "status", "language", "category")
    found = [
        t
        for t in world.template_records.values()
        if t.waba_id == business.waba_id
        and all(query.get(k) in (None, t.node()[k]) for k in filters)
    ]
    limit = int(query.get("limit", "25")) if query.get("limit", "25").isdigit() else 25
    start = int(query.get("after", "0")) if query.get("after", "0").isdigit() else 0
    page = [t.node(query.get("fields")) for t in found[start : start + limit]]
    paging: dict[str, Any] = {"cursors": {"before": str(start), "after": str(start + len(page))}}
    if start + len(page) < len(found):
        paging["next"] = str(request.url.update_query(after=str(start + len(page))))
    answer: dict[str, Any] = {"data": page, "paging": paging}
    if "summary" in query:
        answer["summary"] = {
            "total_count": len(found),
            "message_template_count": len(found),
            "message_template_limit": TEMPLATE_LIMIT,
            "are_translations_complete": True,
        }
    return web.json_response(answer)


def _check_template(body: dict[str, Any]) -> None:
    for key in ("name", "language", "category"):
        if not isinstance(body.get(key), str) or not body[key]:
            raise errors.missing_parameter(f"{key} is required")
    if not NAME.match(body["name"]):
        raise errors.invalid_parameter("name: lowercase letters, digits and underscores only")
    if body["category"] not in CATEGORIES:
        raise errors.invalid_parameter(f"category must be one of {', '.join(CATEGORIES)}")
    if not isinstance(body.get("components", []), list):
        raise errors.invalid_parameter("components must be a list")
    try:
        template_spec(body, "PENDING")  # what a send will be checked against must be readable
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        raise errors.invalid_parameter(f"components are not valid: {exc}") from None
    check_examples(body.get("components") or [])


async def create_template(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    business = world.waba(request.match_info["waba_id"])
    body = await _json_object(request)
    _check_template(body)
    if any(
        t.created["name"] == body["name"] and t.created["language"] == body["language"]
        for t in world.template_records.values()
        if t.waba_id == business.waba_id
    ):
        raise errors.invalid_parameter(
            f"a template named {body['name']} already exists in {body['language']}"
        )
    template = Template(world.new_id(5944), business.waba_id, body)
    world.template_records[template.id] = template
    rejected = body["name"].startswith("reject")
    decide = functools.partial(
        _automatic_review,
        request.app,
        template,
        "REJECTED" if rejected else "APPROVED",
        "INVALID_FORMAT" if rejected else "NONE",
    )
    asyncio.get_running_loop().call_later(REVIEW_S, decide)
    return web.json_response(
        {"id": template.id, "status": template.status, "category": body["category"]}
    )


def _automatic_review(app: web.Application, template: Template, status: str, reason: str) -> None:
    """The review's own decision, unless the API decided first, or the template is gone (deleted,
    or the sandbox reset: ids start again, so compare the object, not its id)."""
    if app[WORLD].template_records.get(template.id) is template and template.status == "PENDING":
        review(app, template.id, status, reason)


def review(app: web.Application, template_id: str, status: str, reason: str) -> bool:
    """Decide a template's review and tell the receiver; False if it is no longer there."""
    world = app[WORLD]
    template = world.template_records.get(template_id)
    if template is None:
        return False
    template.status = status
    template.rejected_reason = reason
    key = (template.created["name"], template.created["language"])
    value = {
        "event": status,
        "message_template_id": int(template.id),
        "message_template_name": key[0],
        "message_template_language": key[1],
        "reason": reason,
    }
    app[SENDER].schedule(
        asyncio.get_running_loop().time(),
        template.waba_id,
        "message_template_status_update",
        value,
        entry_time=int(world.clock.now()),
    )
    return True


async def update_node(request: web.Request) -> web.Response:
    """``POST /{node-id}``: a flow's update or a template's edit (one route for both, as
    aiohttp answers with the first route that matches)."""
    node_id = request.match_info["node_id"]
    if node_id in request.app[WORLD].flows:
        return await flows.update_flow(request, node_id)
    return await edit_template(request, node_id)


async def edit_template(request: web.Request, template_id: str) -> web.Response:
    """``POST /{template-id}``: new components or category, as Meta allows
    (sandbox/template_rules.py); the template goes back to review, and the components update
    webhook tells of the new text."""
    world = request.app[WORLD]
    template = world.template_records.get(template_id)
    if template is None:
        raise errors.unknown_object(template_id)
    changes = await _json_object(request)
    now = world.clock.now()
    check_edit(template.status, template.created["category"], template.edits_at, changes, now)
    edited = {**template.created, **changes}
    _check_template(edited)
    if template.status == "APPROVED":
        template.edits_at.append(now)
    template.created, template.status, template.rejected_reason = edited, "PENDING", None
    decide = functools.partial(_automatic_review, request.app, template, "APPROVED", "NONE")
    asyncio.get_running_loop().call_later(REVIEW_S, decide)
    _components_update(request.app, template)
    # The id, name and category beside success: what pywa 4.5 reads of Meta's answer today.
    answer = {"success": True, "id": template.id, "name": edited["name"]}
    return web.json_response({**answer, "category": edited["category"]})


def _components_update(app: web.Application, template: Template) -> None:
    """``message_template_components_update``: the edited body, header, footer and buttons."""
    parts = {str(c.get("type", "")).upper(): c for c in template.created.get("components", [])}
    value: dict[str, Any] = {
        "message_template_id": int(template.id),
        "message_template_name": template.created["name"],
        "message_template_language": template.created["language"],
        "message_template_element": parts.get("BODY", {}).get("text", ""),
    }
    if "HEADER" in parts and parts["HEADER"].get("text"):
        value["message_template_title"] = parts["HEADER"]["text"]
    if "FOOTER" in parts:
        value["message_template_footer"] = parts["FOOTER"].get("text", "")
    app[SENDER].schedule(
        asyncio.get_running_loop().time(),
        template.waba_id,
        "message_template_components_update",
        value,
        entry_time=int(app[WORLD].clock.now()),
    )


async def delete_templates(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    business = world.waba(request.match_info["waba_id"])
    name, hsm_id = request.query.get("name"), request.query.get("hsm_id")
    if not name:
        raise errors.missing_parameter("name is required")
    doomed = [
        t
        for t in world.template_records.values()
        if t.waba_id == business.waba_id and t.created["name"] == name and hsm_id in (None, t.id)
    ]
    if not doomed:
        raise errors.template_missing(name, "any language")
    for template in doomed:
        del world.template_records[template.id]
    return web.json_response({"success": True})


async def read_profile(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    business = world.business(request.match_info["phone_number_id"])
    fields = request.query.get("fields")
    wanted = fields.split(",") if fields else list(business.profile)
    profile = {k: v for k, v in business.profile.items() if k in wanted}
    return web.json_response({"data": [{**profile, "messaging_product": "whatsapp"}]})


def _check_profile(body: dict[str, Any]) -> None:
    if body.get("messaging_product") != "whatsapp":
        raise errors.missing_parameter("messaging_product must be whatsapp")
    for key, most in PROFILE_LIMITS.items():
        if key in body and (not isinstance(body[key], str) or len(body[key]) > most):
            raise errors.invalid_parameter(f"{key}: a string of at most {most} characters")
    if "about" in body and not body["about"]:
        raise errors.invalid_parameter("about cannot be empty")
    if "email" in body and body["email"] and "@" not in body["email"]:
        raise errors.invalid_parameter("email is not valid")
    websites = body.get("websites", [])
    if (
        not isinstance(websites, list)
        or len(websites) > 2
        or not all(
            isinstance(w, str) and w.startswith(("http://", "https://")) and len(w) <= 256
            for w in websites
        )
    ):
        raise errors.invalid_parameter("websites: at most 2 http(s) URLs of 256 characters")
    if "vertical" in body and body["vertical"] not in VERTICALS | {""}:
        raise errors.invalid_parameter("vertical is not one of the known verticals")


async def update_profile(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    business = world.business(request.match_info["phone_number_id"])
    body = await _json_object(request)
    _check_profile(body)
    business.profile.update({k: v for k, v in body.items() if k in business.profile})
    if isinstance(body.get("profile_picture_handle"), str) and body["profile_picture_handle"]:
        # Meta keeps the picture of an upload handle and serves it from its CDN.
        business.profile["profile_picture_url"] = (
            f"https://pps.whatsapp.net/sandbox/{business.phone_number_id}/"
            f"{body['profile_picture_handle'].rsplit(':', 1)[-1]}.jpg"
        )
    return web.json_response({"success": True})
