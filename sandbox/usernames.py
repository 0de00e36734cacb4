"""Username customers: their ids in webhooks, and the system messages of an id that changed.

Meta's rules (docs/cloudapi/usernames.md): every customer has a business-scoped user id (BSUID,
``user_id``), sent in every messages webhook; a customer with a username shows their phone
number only to a business number that exchanged messages with it by phone number in the last 30
days, or while Meta's contact book holds it (``Customer.phone_shared``). Without it, a message's
``from`` is the BSUID and ``contacts[]`` has no ``wa_id``.

POST /_sandbox/customers/{wa_id}/user_id   {"user_id"?, "phone_number_id"?}: the BSUID changes;
                                           the business hears ``user_changed_user_id``
POST /_sandbox/customers/{wa_id}/number    {"new_wa_id", "phone_number_id"?}: the phone number
                                           changes, and with it the BSUID; the business hears
                                           ``user_changed_number`` if the number may be shown to
                                           it, else ``user_changed_user_id``
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Final

from aiohttp import web

from wapipe.sandbox import blocking
from wapipe.sandbox.customers import inbound_value
from wapipe.sandbox.errors import GraphError
from wapipe.sandbox.keys import FEED, SENDER, WORLD
from wapipe.sandbox.state import Business, Customer, SentMessage, World, new_bsuid, new_wamid
from wapipe.sandbox.validation import SendRequest

BSUID: Final = re.compile(r"[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}")


def routes(prefix: str) -> list[web.RouteDef]:
    return [
        web.post(prefix + "/customers/{wa_id}/user_id", change_user_id),
        web.post(prefix + "/customers/{wa_id}/number", change_number),
    ]


def digits(wa_id: str) -> str:
    if not wa_id.isdigit():
        raise web.HTTPNotFound(text=f"no customer {wa_id}")
    return wa_id


def update_customer(customer: Customer, body: dict[str, Any]) -> None:
    """The username fields of ``POST /_sandbox/customers``."""
    for key in ("user_id", "parent_user_id"):
        value = body.get(key)
        if value is not None and not (isinstance(value, str) and BSUID.fullmatch(value)):
            raise web.HTTPBadRequest(text=f"{key} must be a BSUID such as US.1349120865530274")
        if value is not None:
            setattr(customer, key, value)
    if "username" in body:
        username = body["username"]
        if username is not None and not isinstance(username, str):
            raise web.HTTPBadRequest(text="username must be a string or null")
        customer.username = username or None
    if "in_contact_book" in body:
        customer.in_contact_book = bool(body["in_contact_book"])


def from_ids(customer: Customer) -> dict[str, str]:
    """What an inbound message adds beside ``from``: the sender's BSUID(s)."""
    ids = {"from_user_id": customer.user_id}
    if customer.parent_user_id is not None:
        ids["from_parent_user_id"] = customer.parent_user_id
    return ids


def _where(request: web.Request, body: dict[str, Any]) -> tuple[World, Business, Customer]:
    world = request.app[WORLD]
    customer = world.customer(request.match_info["wa_id"])
    if customer is None:
        raise web.HTTPNotFound(text=f"no customer {request.match_info['wa_id']}")
    chosen = str(body.get("phone_number_id", ""))
    business = world.businesses.get(chosen) or next(iter(world.businesses.values()))
    return world, business, customer


def _deliver(request: web.Request, business: Business, message: dict[str, Any]) -> None:
    """A system message to the business: no ``contacts`` array, as Meta sends them."""
    value = inbound_value(
        display_phone_number=business.display_phone_number,
        phone_number_id=business.phone_number_id,
        customer_name="",
        wa_id="",
        message=message,
    )
    loop_now = asyncio.get_running_loop().time()
    request.app[SENDER].schedule(loop_now, business.waba_id, "messages", value)
    request.app[FEED].publish(
        "inbound",
        wa_id=str(message.get("from", "")),
        wamid=message["id"],
        phone_number_id=business.phone_number_id,
        message=message,
    )


def _system(world: World, sender: str, system: dict[str, Any]) -> dict[str, Any]:
    return {
        "from": sender,
        "id": new_wamid(),
        "timestamp": str(int(world.clock.now())),
        "type": "system",
        "system": system,
    }


def user_id_changed(customer: Customer, previous: str) -> dict[str, Any]:
    """The ``system`` object of ``user_changed_user_id``: the BSUID only, no phone number."""
    system = {
        "body": f"User {customer.name} changed their business-scoped user ID",
        "type": "user_changed_user_id",
        "user_id": customer.user_id,
        "previous_user_id": previous,
    }
    if customer.parent_user_id is not None:
        system["parent_user_id"] = customer.parent_user_id
    return system


async def change_user_id(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    world, business, customer = _where(request, body)
    previous = customer.user_id
    new = body.get("user_id") or new_bsuid(previous.split(".", 1)[0])
    if not isinstance(new, str) or not BSUID.fullmatch(new):
        raise web.HTTPBadRequest(text="user_id must be a BSUID such as US.1349120865530274")
    customer.user_id = new
    message = _system(world, previous, user_id_changed(customer, previous))
    message["from_user_id"] = previous
    _deliver(request, business, message)
    return web.json_response({"wamid": message["id"], "user_id": new, "previous": previous})


async def change_number(request: web.Request) -> web.Response:
    body = await request.json() if request.can_read_body else {}
    world, business, customer = _where(request, body)
    new_wa_id = body.get("new_wa_id")
    if not isinstance(new_wa_id, str) or not new_wa_id.isdigit() or new_wa_id in world.customers:
        raise web.HTTPBadRequest(text='give {"new_wa_id": "<digits no customer has>"}')
    old_wa_id, previous = customer.wa_id, customer.user_id
    shown = customer.phone_shared(business.phone_number_id, world.clock.now())
    # A new phone number means a new BSUID (docs/cloudapi/usernames.md).
    del world.customers[old_wa_id]
    customer.wa_id, customer.user_id = new_wa_id, new_bsuid(previous.split(".", 1)[0])
    world.customers[new_wa_id] = customer
    if shown:
        system = {
            "body": f"User {customer.name} changed from {old_wa_id} to {new_wa_id}",
            "wa_id": new_wa_id,
            "type": "user_changed_number",
            "user_id": customer.user_id,
            "previous_user_id": previous,
        }
        message = _system(world, old_wa_id, system) | {"from_user_id": previous}
    else:  # the new number may not be shown: the business learns only the new BSUID
        message = _system(world, previous, user_id_changed(customer, previous))
        message["from_user_id"] = previous
    _deliver(request, business, message)
    return web.json_response({"wamid": message["id"], "user_id": customer.user_id})


def refuse_at_once(business: Business, parsed: SendRequest, customer: Customer | None) -> None:
    """Refusals Meta makes on the call for whom a send is addressed to."""
    refused = blocking.refused_send(business, customer)
    if refused is not None:
        raise refused
    by_bsuid = BSUID.fullmatch(parsed.wa_id) is not None
    if by_bsuid and parsed.template is not None and parsed.template.category == "AUTHENTICATION":
        # One-tap, zero-tap and copy-code templates need a phone number (usernames.md).
        raise GraphError(131062, "Authentication templates need a phone number, not a BSUID")


def resolved(parsed: SendRequest, customer: Customer | None, to_bsuid: bool) -> dict[str, str]:
    """How the answer names the recipient: ``user_id`` for a BSUID send, else ``wa_id``."""
    if to_bsuid:
        return {"input": parsed.to, "user_id": parsed.wa_id}
    return {"input": parsed.to, "wa_id": customer.wa_id if customer is not None else parsed.wa_id}


def sent_to(customer: Customer | None, sent: SentMessage, now: float) -> None:
    """Note how an accepted send addressed its customer: by BSUID, or by phone number (which
    keeps the number shown to that business number for 30 days)."""
    sent.to_bsuid = BSUID.fullmatch(sent.to) is not None
    if customer is not None and not sent.to_bsuid:
        customer.phone_contact_at[sent.phone_number_id] = now


def recipient_ids(customer: Customer | None, sent: SentMessage) -> dict[str, str]:
    """A status's recipient: ``recipient_user_id`` always, ``recipient_id`` (the number) unless
    the message was sent to a BSUID."""
    ids = {}
    if not sent.to_bsuid:
        ids["recipient_id"] = customer.wa_id if customer is not None else sent.to
    if customer is not None:
        ids["recipient_user_id"] = customer.user_id
    return ids
