"""``/_sandbox/``: what tests and people use to look inside the sandbox and steer it.

GET  /_sandbox/state                     businesses, customers, clock, limits
GET  /_sandbox/requests                  the last Graph requests (--request-log), newest last
GET  /_sandbox/counts                    messages accepted per number per second, limit hits
GET  /_sandbox/webhooks                  webhooks delivered and the receiver's answers
POST /_sandbox/webhooks/{id}/redeliver   send one again
POST /_sandbox/clock                     {"advance_s": N, "freeze": bool}: move, stop, start
POST /_sandbox/reset                     forget everything but the configuration
POST /_sandbox/businesses                {"display_phone_number"}: add a business
POST /_sandbox/customers                 {"wa_id", "name", "stopped_marketing"?, "username"?,
                                          "user_id"?, "parent_user_id"?, "in_contact_book"?}
POST /_sandbox/customers/{wa_id}/messages  the customer sends a message (see customers.py);
                                          {wa_id} may be their BSUID
POST /_sandbox/customers/{wa_id}/user_id|number  a BSUID or phone number change (usernames.py)
POST /_sandbox/templates/{id}/review     {"status", "reason"?}: decide a template's review now
GET|POST|DELETE /_sandbox/faults         errors, latency, hangs, drops on demand (faults.py)
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Final

from aiohttp import web

from wapipe.sandbox import business, usernames
from wapipe.sandbox.customers import (
    INBOUND_KINDS,
    MediaRef,
    inbound_message,
    inbound_value,
)
from wapipe.sandbox.faults import Fault
from wapipe.sandbox.keys import CONFIG, FAULTS, FEED, SENDER, WORLD
from wapipe.sandbox.media import LARGEST_MEDIA_BYTES, MediaItem
from wapipe.sandbox.media_files import MEDIA_KINDS, sample_media
from wapipe.sandbox.state import Business, Customer, World, new_wamid


def routes(prefix: str) -> list[web.RouteDef]:
    return [
        web.get(prefix + "/state", state),
        web.get(prefix + "/requests", requests),
        web.get(prefix + "/counts", counts),
        web.get(prefix + "/webhooks", webhooks),
        web.post(prefix + "/webhooks/{delivery_id}/redeliver", redeliver),
        web.post(prefix + "/clock", clock),
        web.post(prefix + "/reset", reset),
        web.post(prefix + "/businesses", add_business),
        web.post(prefix + "/customers", put_customer),
        web.post(prefix + "/customers/{wa_id}/messages", customer_sends),
        *usernames.routes(prefix),
        web.post(prefix + "/templates/{template_id}/review", review_template),
        web.get(prefix + "/faults", list_faults),
        web.post(prefix + "/faults", add_fault),
        web.delete(prefix + "/faults", clear_faults),
        # Before the Graph routes, whose /{version}/{node} would take any other /_sandbox/x.
        web.route("*", prefix + "/{tail:.*}", unknown),
    ]


async def _body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="the body is not JSON") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="the body must be a JSON object")
    return body


async def state(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    config = request.app[CONFIG]
    return web.json_response(
        {
            "clock": {"now": world.clock.now(), "offset_s": world.clock.offset_s},
            "businesses": [dataclasses.asdict(b) for b in world.businesses.values()],
            "customers": [dataclasses.asdict(c) for c in world.customers.values()],
            "limits": {
                "rate_per_s": config.rate_per_s,
                "pair_interval_s": config.pair_interval_s,
                "pair_burst": config.pair_burst,
            },
            "webhook_url": config.webhook_url,
            "webhooks_pending": request.app[SENDER].pending(),
        }
    )


async def requests(request: web.Request) -> web.Response:
    return web.json_response([dataclasses.asdict(r) for r in request.app[WORLD].requests])


async def counts(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    return web.json_response(
        {
            number: {
                "per_second": {str(second): n for second, n in sorted(per_second.items())},
                "busiest_second": world.throughput.busiest_second(number),
                "throughput_refused": world.throughput.refused[number],
                "pair_refused": sum(
                    n for (phone, _), n in world.pair_rate.refused.items() if phone == number
                ),
                "sent": sum(1 for m in world.sent.values() if m.phone_number_id == number),
            }
            for number, per_second in _numbers(world)
        }
    )


def _numbers(world: World) -> list[tuple[str, dict[int, int]]]:
    return [
        (number, dict(world.throughput.per_second.get(number, {}))) for number in world.businesses
    ]


async def webhooks(request: web.Request) -> web.Response:
    sender = request.app[SENDER]
    return web.json_response(
        [
            {"id": d.id, "delivered": d.delivered, "attempts": d.attempts, "body": d.body.decode()}
            for d in sender.deliveries.values()
        ]
    )


async def redeliver(request: web.Request) -> web.Response:
    try:
        delivery_id = int(request.match_info["delivery_id"])
    except ValueError:
        raise web.HTTPBadRequest(text="a delivery id is a number") from None
    again = request.app[SENDER].redeliver(delivery_id)
    if again is None:
        raise web.HTTPNotFound(text=f"no delivery {delivery_id}")
    return web.json_response({"id": again.id})


async def clock(request: web.Request) -> web.Response:
    """``{"advance_s": N}`` moves the clock forward; ``{"freeze": bool}`` stops or starts it."""
    body = await _body(request)
    advance = body.get("advance_s", 0)
    freeze = body.get("freeze")
    if (
        not isinstance(advance, int | float)
        or advance < 0
        or not (freeze is None or isinstance(freeze, bool))
    ):
        raise web.HTTPBadRequest(text='give {"advance_s": <seconds >= 0>, "freeze": <bool>}')
    world = request.app[WORLD]
    if freeze is not None:
        world.clock.freeze(freeze)
    world.clock.advance(float(advance))
    answer = {"now": world.clock.now(), "frozen": world.clock.frozen_at is not None}
    request.app[FEED].publish("control", what="clock", clock=answer)
    return web.json_response(answer)


async def reset(request: web.Request) -> web.Response:
    request.app[WORLD].replace_with(request.app[CONFIG].new_world())
    request.app[SENDER].reset()
    request.app[FAULTS].reset()
    request.app[FEED].backlog.clear()  # a console connecting now starts from the reset
    request.app[FEED].publish("control", what="reset")
    return web.json_response({"success": True})


async def add_business(request: web.Request) -> web.Response:
    body = await _body(request)
    phone = body.get("display_phone_number")
    if not isinstance(phone, str) or not phone.isdigit():
        raise web.HTTPBadRequest(text='give {"display_phone_number": "<digits>"}')
    business = request.app[WORLD].add_business(phone)
    return web.json_response(dataclasses.asdict(business))


async def put_customer(request: web.Request) -> web.Response:
    body = await _body(request)
    wa_id, name = body.get("wa_id"), body.get("name", "Customer")
    if not isinstance(wa_id, str) or not wa_id.isdigit() or not isinstance(name, str):
        raise web.HTTPBadRequest(text='give {"wa_id": "<digits>", "name": "..."}')
    customer = request.app[WORLD].add_customer(wa_id, name)
    if "stopped_marketing" in body:
        customer.stopped_marketing = bool(body["stopped_marketing"])
    usernames.update_customer(customer, body)
    return web.json_response(dataclasses.asdict(customer))


async def review_template(request: web.Request) -> web.Response:
    """``{"status": "APPROVED" | "REJECTED" | "PAUSED" | "DISABLED", "reason"?}``, at once."""
    body = await _body(request)
    status, reason = body.get("status"), body.get("reason", "NONE")
    if status not in ("APPROVED", "REJECTED", "PAUSED", "DISABLED") or not isinstance(reason, str):
        raise web.HTTPBadRequest(text='give {"status": "APPROVED|REJECTED|PAUSED|DISABLED"}')
    if not business.review(request.app, request.match_info["template_id"], status, reason):
        raise web.HTTPNotFound(text="no such template")
    return web.json_response({"success": True})


def sender_id(customer: Customer, business: Business, now: float) -> str:
    """Who a customer's message is from, as this business may see it: the phone number where
    the customer's number shows to it (Customer.phone_shared), else the BSUID."""
    shown = customer.phone_shared(business.phone_number_id, now)
    return customer.wa_id if shown else customer.user_id


def deliver_inbound(
    app: web.Application,
    business: Business,
    customer: Customer,
    message: dict[str, Any],
    now: float,
) -> bool:
    """A customer's message to a business, as Meta delivers it: its webhook (with the contact
    the business may see), the 24-hour window opened, the console told. False, and nothing
    sent, when the customer has blocked the business."""
    if business.phone_number_id in customer.blocked_by:
        return False
    world = app[WORLD]
    value = inbound_value(
        display_phone_number=business.display_phone_number,
        phone_number_id=business.phone_number_id,
        customer_name=customer.name,
        wa_id=customer.wa_id,
        message=message,
        contact=customer.contact(business.phone_number_id, now),
    )
    customer.last_inbound_at = now  # opens the 24-hour window (docs/cloudapi/inbound-messages.md)
    if customer.phone_shared(business.phone_number_id, now):
        customer.phone_contact_at[business.phone_number_id] = now
    world.throughput.record_inbound(business.phone_number_id, now)
    app[SENDER].schedule(asyncio.get_running_loop().time(), business.waba_id, "messages", value)
    app[FEED].publish(
        "inbound",
        wa_id=customer.wa_id,
        wamid=message["id"],
        phone_number_id=business.phone_number_id,
        message=message,
    )
    return True


async def customer_sends(request: web.Request) -> web.Response:
    """The customer sends a message to a business: ``{"type", "phone_number_id"?, "size"?,
    ...the type's fields (customers.py)}``; a media type gets real bytes behind a media id."""
    body = await _body(request)
    world, config = request.app[WORLD], request.app[CONFIG]
    kind = body.pop("type", "text")
    if kind not in INBOUND_KINDS:
        raise web.HTTPBadRequest(text=f"type must be one of {', '.join(INBOUND_KINDS)}")
    business = world.businesses.get(
        str(body.pop("phone_number_id", "")), next(iter(world.businesses.values()))
    )
    customer = world.customer(request.match_info["wa_id"])
    if customer is None:
        customer = world.add_customer(usernames.digits(request.match_info["wa_id"]), "Customer")
    wa_id, now = customer.wa_id, world.clock.now()
    media_ref = None
    if kind in MEDIA_KINDS:
        media_ref = _customer_media(
            world, business.phone_number_id, kind, body, now, config.inbound_media_ttl_s
        )
    if kind in REPLIES and "context" not in body:  # a button is pressed on a message we sent
        body["context"] = {"from": business.display_phone_number, "id": _last_sent(world, wa_id)}
    try:
        message = inbound_message(
            kind,
            sender=sender_id(customer, business, now),
            wamid=new_wamid(),
            timestamp=int(now),
            spec=body,
            media=media_ref,
        ) | usernames.from_ids(customer)
    except (TypeError, ValueError, AttributeError) as exc:
        raise web.HTTPBadRequest(text=f"the {kind} message's fields do not fit: {exc}") from None
    if not deliver_inbound(request.app, business, customer, message, now):
        return web.json_response({"wamid": message["id"], "delivered": False})
    if "referral" in body:  # from an ad: the next answer may open a free entry point
        customer.referral_at = now
    answer: dict[str, Any] = {"wamid": message["id"]}
    if media_ref is not None:
        answer["media_id"] = media_ref.id
    return web.json_response(answer)


REPLIES: Final = ("button", "interactive")  # always answer a message: Meta sends its context


def _last_sent(world: World, wa_id: str) -> str:
    """The wamid of the business's last message to this customer (a new one if none)."""
    sent = [m for m in world.sent.values() if m.to == wa_id]
    return max(sent, key=lambda m: m.sent_at).wamid if sent else new_wamid()


def _customer_media(
    world: World,
    phone_number_id: str,
    kind: str,
    spec: dict[str, Any],
    now: float,
    lifetime_s: float,
) -> MediaRef:
    size = spec.pop("size", 0)
    if not isinstance(size, int) or not 0 <= size <= LARGEST_MEDIA_BYTES:
        raise web.HTTPBadRequest(text=f"size is a number of bytes, {LARGEST_MEDIA_BYTES} at most")
    file = sample_media(
        kind, size, voice=bool(spec.get("voice")), animated=bool(spec.get("animated"))
    )
    item = world.media.add(
        MediaItem(
            world.new_id(1234567),
            file.content,
            file.mime_type,
            phone_number_id,
            now,
            lifetime_s,
            file.filename,
        )
    )
    return MediaRef(item.id, item.mime_type, item.sha256)


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[FAULTS].describe())


async def add_fault(request: web.Request) -> web.Response:
    try:
        fault = Fault.from_json(await _body(request))
    except (TypeError, ValueError) as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    request.app[FAULTS].faults.append(fault)
    request.app[FEED].publish("control", what="faults", faults=request.app[FAULTS].describe())
    return web.json_response(request.app[FAULTS].describe())


async def clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS].faults.clear()
    request.app[FEED].publish("control", what="faults", faults=[])
    return web.json_response([])


async def unknown(request: web.Request) -> web.Response:
    raise web.HTTPNotFound(text=f"no {request.method} {request.path} in /_sandbox/")
