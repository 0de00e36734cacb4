"""The block-users API: ``POST|DELETE|GET /{version}/{phone_number_id}/block_users``.

Meta's rules (docs/cloudapi/blocking.md): up to 1,000 users a request (more: 130429), 64,000 on
a number's list (139101); only a customer who wrote in the last 24 hours can be blocked
(131047), never the business's own number (131021). Results are per user: when any fails, the
answer is HTTP 400 with error 139100 and the same lists. A blocked customer's messages never
reach the business (admin.py) and a send to them is refused with 130403 (graph.py).
"""

from __future__ import annotations

import base64
import re
from typing import Any, Final

from aiohttp import web

from wapipe.sandbox.errors import GraphError, invalid_parameter, missing_parameter
from wapipe.sandbox.json_checks import json_body
from wapipe.sandbox.keys import WORLD
from wapipe.sandbox.state import Business, Customer, World

USERS_PER_REQUEST: Final = 1_000
BLOCKLIST_MAX: Final = 64_000
PAGE_SIZE: Final = 100


def routes() -> list[web.RouteDef]:
    path = "/{version}/{phone_number_id}/block_users"
    return [web.post(path, block), web.delete(path, unblock), web.get(path, blocked_list)]


def refused_send(business: Business, customer: Customer | None) -> GraphError | None:
    """A send to a customer this number blocked: refused at the call."""
    if customer is not None and business.phone_number_id in customer.blocked_by:
        return GraphError(
            130403, "Unable to deliver the message. This business has blocked the end user."
        )
    return None


def _users(body: Any) -> list[str]:
    if not isinstance(body, dict) or body.get("messaging_product") != "whatsapp":
        raise invalid_parameter('messaging_product must be "whatsapp"')
    entries = body.get("block_users")
    if not isinstance(entries, list) or not entries:
        raise missing_parameter('block_users is required: a list of {"user": ...}')
    if len(entries) > USERS_PER_REQUEST:
        raise GraphError(130429, f"at most {USERS_PER_REQUEST} users a request")
    # A phone number or wa_id as "user"; a BSUID as "user_id" (docs/cloudapi/blocking.md).
    users = [(e.get("user") or e.get("user_id")) if isinstance(e, dict) else None for e in entries]
    if not all(isinstance(u, str) and u for u in users):
        raise invalid_parameter('each block_users entry needs a "user" or "user_id" string')
    return [str(u) for u in users]


def _find(world: World, user: str) -> Customer | None:
    """A user as a request names them: a phone number (any punctuation), a wa_id, a BSUID."""
    digits = re.sub(r"[+\s()-]", "", user)
    return world.customer(digits if digits.isdigit() else user)


def _named(user: str, customer: Customer | None) -> dict[str, Any]:
    named: dict[str, Any] = {"input": user}
    if customer is not None:
        named |= {"user_id": customer.user_id} if user == customer.user_id else {}
        named |= {"wa_id": customer.wa_id} if user != customer.user_id else {}
    return named


def _failed(user: str, customer: Customer | None, code: int, message: str) -> dict[str, Any]:
    error = {"message": message, "code": code, "error_data": {"details": message}}
    return _named(user, customer) | {"errors": [error]}


def _answer(done_key: str, done: list[dict[str, Any]], failed: list[dict[str, Any]]) -> Any:
    lists: dict[str, Any] = {done_key: done} | ({"failed_users": failed} if failed else {})
    body: dict[str, Any] = {"messaging_product": "whatsapp", "block_users": lists}
    if not failed:
        return web.json_response(body)
    error = GraphError(139100, "Failed to block some users, see the block_users list")
    return web.json_response(body | error.response_body(), status=error.http_status)


def _block_one(
    world: World, business: Business, user: str, listed: int
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(added, failed) for one user."""
    customer, now = _find(world, user), world.clock.now()
    if user.lstrip("+") == business.display_phone_number:
        return None, _failed(user, customer, 131021, "Failed to block self phone number")
    if customer is None or not customer.in_window(now):
        message = "Re-engagement required: the user has not messaged in the last 24 hours"
        return None, _failed(user, customer, 131047, message)
    if business.phone_number_id not in customer.blocked_by and listed >= BLOCKLIST_MAX:
        return None, _failed(user, customer, 139101, "Blocklist limit reached")
    customer.blocked_by.setdefault(business.phone_number_id, now)
    return _named(user, customer), None


def _listed(world: World, business: Business) -> list[Customer]:
    """This number's blocklist, oldest block first."""
    chosen = [c for c in world.customers.values() if business.phone_number_id in c.blocked_by]
    return sorted(chosen, key=lambda c: c.blocked_by[business.phone_number_id])


async def block(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    business = world.business(request.match_info["phone_number_id"])
    users = _users(await json_body(request))
    added: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for user in users:
        ok, refused = _block_one(world, business, user, len(_listed(world, business)))
        added += [ok] if ok else []
        failed += [refused] if refused else []
    response: web.Response = _answer("added_users", added, failed)
    return response


async def unblock(request: web.Request) -> web.Response:
    """Unblocking has no 24-hour rule; a user not on the list is removed all the same."""
    world = request.app[WORLD]
    business = world.business(request.match_info["phone_number_id"])
    removed: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for user in _users(await json_body(request)):
        customer = _find(world, user)
        if customer is None:
            failed.append(_failed(user, None, 131026, "Not a WhatsApp user"))
            continue
        customer.blocked_by.pop(business.phone_number_id, None)
        removed.append(_named(user, customer))
    response: web.Response = _answer("removed_users", removed, failed)
    return response


async def blocked_list(request: web.Request) -> web.Response:
    """Pages of ``{"messaging_product", "wa_id", "user_id"}``, ``after`` cursors as Graph's."""
    world = request.app[WORLD]
    business = world.business(request.match_info["phone_number_id"])
    listed = _listed(world, business)
    try:
        start = int(base64.urlsafe_b64decode(request.query.get("after", "") + "==") or 0)
        limit = max(1, min(int(request.query.get("limit", PAGE_SIZE)), PAGE_SIZE))
    except ValueError:
        raise invalid_parameter("after and limit must be as a previous page gave them") from None
    page = listed[start : start + limit]
    # "input" too: clients read it on every listed user (docs/cloudapi/blocking.md).
    data = [
        {"messaging_product": "whatsapp", "input": c.wa_id, "wa_id": c.wa_id, "user_id": c.user_id}
        for c in page
    ]
    cursor = base64.urlsafe_b64encode(str(start + len(page)).encode()).decode().rstrip("=")
    paging: dict[str, Any] = {"cursors": {"before": "", "after": cursor}}
    if start + len(page) < len(listed):
        paging["next"] = f"{request.url.with_query({'after': cursor, 'limit': str(limit)})}"
    return web.json_response({"data": data, "paging": paging})
