"""The Graph endpoints wapipe calls, under ``/{version}/``: sends, mark-as-read, phone numbers.

Send outcomes follow docs/cloudapi/sending.md, errors.md: refusals Meta makes on the call (bad
parameters, limits) answer an error at once; refusals Meta makes after accepting (outside the
24-hour window, unknown recipient, marketing stopped) answer 200 with a wamid, then a ``failed``
status webhook.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any, Final

from aiohttp import web

from wapipe.sandbox import analytics, blocking, errors, flows, media, pricing, usernames
from wapipe.sandbox.errors import GraphError
from wapipe.sandbox.json_checks import json_body
from wapipe.sandbox.keys import CONFIG, FEED, SENDER, WORLD
from wapipe.sandbox.limits import admit_send
from wapipe.sandbox.state import Business, SentMessage, World, new_wamid
from wapipe.sandbox.templates import FindTemplate, TemplateSpec
from wapipe.sandbox.validation import ReadRequest, SendRequest, parse_messages_request
from wapipe.sandbox.webhooks import WebhookSender

_ENVELOPE: Final = ("messaging_product", "recipient_type", "to")  # not the message itself


def routes() -> list[web.RouteDef]:
    return [
        *blocking.routes(),
        web.get(media.DOWNLOAD_PATH, download_media),
        web.post("/{version}/{phone_number_id}/messages", send_message),
        # The Marketing Messages API (MM Lite): marketing templates only, priced marketing_lite.
        web.post("/{version}/{phone_number_id}/marketing_messages", send_message),
        web.post("/{version}/{phone_number_id}/media", upload_media),
        web.get("/{version}/{waba_id}/template_analytics", template_analytics),
        web.get("/{version}/{waba_id}/phone_numbers", list_phone_numbers),
        web.get("/{version}/{node_id}", read_node),
        web.delete("/{version}/{node_id}", delete_node),
    ]


async def send_message(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    business = world.business(request.match_info["phone_number_id"])
    body = await json_body(request)
    parsed = parse_messages_request(body, _templates(world, business.waba_id))
    if isinstance(parsed, ReadRequest):
        return web.json_response({"success": True})
    lite = request.path.endswith("/marketing_messages")
    if lite and (parsed.template is None or parsed.template.category != "MARKETING"):
        raise errors.invalid_parameter("marketing_messages sends marketing templates only")
    now = world.clock.now()
    customer = world.customer(parsed.wa_id)  # by phone number or by BSUID
    usernames.refuse_at_once(business, parsed, customer)
    paired = customer.wa_id if customer is not None else parsed.wa_id  # one pair limit a person
    refused = admit_send(world.throughput, world.pair_rate, business.phone_number_id, paired, now)
    if refused == 130429:
        raise GraphError(
            130429,
            "Message failed to send because there were too many messages "
            f"sent from this phone number ({world.throughput.rate_per_s}/s)",
        )
    if refused == 131056:
        raise GraphError(
            131056,
            "Message failed to send because there were too many messages "
            "sent from this phone number to the same phone number in a "
            "short period of time.",
        )
    sent = _accept(world, business, parsed, now, lite=lite)
    usernames.sent_to(customer, sent, now)
    request.app[FEED].publish(
        "outbound",
        wa_id=parsed.wa_id,
        wamid=sent.wamid,
        phone_number_id=business.phone_number_id,
        message={key: value for key, value in body.items() if key not in _ENVELOPE},
    )
    refusal = _refusal(world, parsed)
    sent.failed_code = refusal.code if refusal is not None else None
    _schedule_statuses(request.app[SENDER], world, business, sent, refusal)
    message: dict[str, Any] = {"id": sent.wamid}
    if parsed.template is not None:
        message["message_status"] = "accepted"
    return web.json_response(
        {
            "messaging_product": "whatsapp",
            "contacts": [usernames.resolved(parsed, customer, sent.to_bsuid)],
            "messages": [message],
        }
    )


def _templates(world: World, waba_id: str) -> FindTemplate:
    """The templates of this WABA, as a send finds them: by name and language."""

    def find(name: str, language: str) -> TemplateSpec | None:
        return next(
            (
                t.spec()
                for t in world.template_records.values()
                if t.waba_id == waba_id
                and (t.created["name"], t.created["language"]) == (name, language)
            ),
            None,
        )

    return find


def _accept(
    world: World, business: Business, parsed: SendRequest, now: float, *, lite: bool = False
) -> SentMessage:
    template_id = parsed.template.id if parsed.template is not None else None
    sent = SentMessage(
        new_wamid(),
        business.phone_number_id,
        business.display_phone_number,
        parsed.wa_id,
        parsed.type,
        "service",
        now,
        parsed.biz_opaque_callback_data,
        template_id,
    )
    if parsed.type == "interactive" and parsed.payload.get("type") == "flow":
        sent.flow = dict(parsed.payload["action"]["parameters"])  # checked: interactive.py
    _price(world, sent, parsed, lite)
    world.sent[sent.wamid] = sent
    return sent


def _price(world: World, sent: SentMessage, parsed: SendRequest, lite: bool) -> None:
    """Price the send as Meta does (sandbox/pricing.py), opening a free entry point window when
    this send answers a customer who came from an ad."""
    customer = world.customer(sent.to)
    now = sent.sent_at
    in_entry_point = False
    if customer is not None:
        if pricing.opens_entry_point(customer.referral_at, customer.entry_point_until, now):
            customer.entry_point_id = secrets.token_hex(16)
            customer.entry_point_until = now + pricing.ENTRY_POINT_WINDOW_S
            sent.opened_conversation = True
        in_entry_point = now < customer.entry_point_until
    send = pricing.Send(
        parsed.template.category if parsed.template is not None else None,
        lite,
        sent.display_phone_number,
        sent.to,
    )
    price = pricing.price(
        send,
        in_service_window=customer is not None and customer.in_window(now),
        in_entry_point=in_entry_point,
    )
    sent.category, sent.billable, sent.pricing_type = price.category, price.billable, price.type
    if in_entry_point and customer is not None:
        sent.conversation_id = customer.entry_point_id


def _refusal(world: World, parsed: SendRequest) -> GraphError | None:
    """What Meta refuses after accepting the send (docs/cloudapi/errors.md: async)."""
    customer = world.customer(parsed.wa_id)
    if customer is None:
        return GraphError(131026, "Message Undeliverable.")
    if parsed.template is None and not customer.in_window(world.clock.now()):
        return GraphError(
            131047,
            "Message failed to send because more than 24 hours have "
            "passed since the customer last replied to this number.",
        )
    if (
        parsed.template is not None
        and parsed.template.category == "MARKETING"
        and (customer.stopped_marketing)
    ):
        return GraphError(
            131050,
            "Unable to deliver the message. This recipient has chosen to "
            "stop receiving marketing messages on WhatsApp from your "
            "business.",
        )
    return None


def _schedule_statuses(
    sender: WebhookSender,
    world: World,
    business: Business,
    sent: SentMessage,
    refusal: GraphError | None,
) -> None:
    loop_now = _loop_time()
    delays = sender.status_delays()
    if refusal is not None:
        _schedule(
            sender,
            world,
            business,
            sent,
            "failed",
            loop_now + delays[0],
            errors=[refusal.status_error()],
        )
        return
    # A reaction gets only `sent`; audio is played after it is read (docs/cloudapi/statuses.md).
    statuses = ["sent"] if sent.type == "reaction" else ["sent", "delivered", "read"]
    if sent.type == "audio":
        statuses.append("played")
        delays.append(max(delays) + 0.01)
    for status, delay in zip(statuses, delays, strict=False):
        _schedule(sender, world, business, sent, status, loop_now + delay)


def _schedule(
    sender: WebhookSender,
    world: World,
    business: Business,
    sent: SentMessage,
    status: str,
    at: float,
    *,
    errors: list[dict[str, Any]] | None = None,
) -> None:
    timestamp = int(world.clock.now() + max(0.0, at - _loop_time()))
    item: dict[str, Any] = {
        "id": sent.wamid,
        "status": status,
        "timestamp": str(timestamp),
    }
    customer = world.customer(sent.to)
    item |= usernames.recipient_ids(customer, sent)
    if errors:
        item["errors"] = errors
    else:
        item.update(_pricing_fields(world, sent, status))
    if sent.biz_opaque_callback_data is not None:
        item["biz_opaque_callback_data"] = sent.biz_opaque_callback_data
    sent.statuses.append((status, float(timestamp)))
    value: dict[str, Any] = {"messaging_product": "whatsapp", "metadata": _metadata(business)}
    if customer is not None:
        value["contacts"] = [customer.contact(business.phone_number_id, world.clock.now())]
    value["statuses"] = [item]
    sender.schedule(at, business.waba_id, "messages", value, order_key=sent.wamid)


def _pricing_fields(world: World, sent: SentMessage, status: str) -> dict[str, Any]:
    """``pricing``, and ``conversation`` for a message of a free entry point window only: Meta
    dropped it elsewhere with per-message pricing (docs/cloudapi/pricing.md)."""
    price = pricing.Price(sent.billable, sent.category, sent.pricing_type)
    fields: dict[str, Any] = {"pricing": price.pricing_object()}
    if sent.conversation_id:
        conversation: dict[str, Any] = {
            "id": sent.conversation_id,
            "origin": {"type": "referral_conversion"},
        }
        customer = world.customer(sent.to)
        if status == "sent" and sent.opened_conversation and customer is not None:
            conversation["expiration_timestamp"] = str(int(customer.entry_point_until))
        fields["conversation"] = conversation
    return fields


def _metadata(business: Business) -> dict[str, str]:
    return {
        "display_phone_number": business.display_phone_number,
        "phone_number_id": business.phone_number_id,
    }


def _loop_time() -> float:
    return asyncio.get_running_loop().time()


async def read_node(request: web.Request) -> web.Response:
    """``GET /{node-id}``: a media look-up, a template, a WABA or a phone number
    (docs/cloudapi/media.md, templates.md, business.md)."""
    world = request.app[WORLD]
    node_id = request.match_info["node_id"]
    if node_id in world.media.items:
        now = world.clock.now()
        item = world.media.find(node_id, now)
        base = f"{request.scheme}://{request.host}"
        url = world.media.new_url(base, item, now, request.app[CONFIG].media_url_ttl_s)
        return web.json_response(media.lookup_answer(item, url))
    if node_id in world.flows:  # GET /{flow-id} (sandbox/flows.py)
        return web.json_response(flows.flow_of(world, node_id).node())
    template = world.template_records.get(node_id)
    if template is not None:  # GET /{template-id} (docs/cloudapi/templates.md)
        return web.json_response(template.node(request.query.get("fields")))
    waba = world.business_by_waba(node_id)
    if waba is not None:
        return web.json_response(_waba_node(world, waba, request.query.get("fields", "")))
    node = phone_number_node(world.business(node_id))
    return web.json_response(chosen(node, request.query.get("fields"), NUMBER_NODE_DEFAULT))


# What Meta answers without ``fields`` (docs/cloudapi/business.md; Meta's samples): the list shows
# less than one number's node. With ``fields``, the fields asked for and the id.
NUMBER_LIST_DEFAULT: Final = ("verified_name", "display_phone_number", "id", "quality_rating")
NUMBER_NODE_DEFAULT: Final = (
    "verified_name", "code_verification_status", "display_phone_number", "quality_rating",
    "platform_type", "throughput", "id",
)  # fmt: skip


def chosen(node: dict[str, Any], fields: str | None, default: tuple[str, ...]) -> dict[str, Any]:
    wanted = {f.strip() for f in fields.split(",")} | {"id"} if fields else set(default)
    return {k: v for k, v in node.items() if k in wanted}


def phone_number_node(business: Business) -> dict[str, Any]:
    """A phone number's fields (docs/cloudapi/business.md)."""
    return {
        "id": business.phone_number_id,
        "display_phone_number": business.display_phone_number,
        "verified_name": business.verified_name,
        "quality_rating": business.quality_rating,
        "messaging_limit_tier": business.messaging_limit_tier,
        "whatsapp_business_manager_messaging_limit": business.messaging_limit_tier,
        "throughput": {"level": business.throughput_level},
        "code_verification_status": "VERIFIED",
        "name_status": "APPROVED",
        "platform_type": "CLOUD_API",
        "status": "CONNECTED",
    }


async def list_phone_numbers(request: web.Request) -> web.Response:
    """``GET /{waba-id}/phone_numbers``."""
    world = request.app[WORLD]
    waba_id = request.match_info["waba_id"]
    world.waba(waba_id)
    fields = request.query.get("fields")
    numbers = [
        chosen(phone_number_node(b), fields, NUMBER_LIST_DEFAULT)
        for b in world.businesses.values()
        if b.waba_id == waba_id
    ]
    return web.json_response({"data": numbers, "paging": {"cursors": {"before": "", "after": ""}}})


async def delete_node(request: web.Request) -> web.Response:
    """``DELETE /{media-id}``."""
    world = request.app[WORLD]
    if request.match_info["node_id"] in world.flows:
        flows.delete_flow(world, request.match_info["node_id"])
        return web.json_response({"success": True})
    world.media.delete(request.match_info["node_id"], world.clock.now())
    return web.json_response({"success": True})


async def upload_media(request: web.Request) -> web.Response:
    """``POST /{phone-number-id}/media``: multipart, answers ``{"id"}``."""
    world = request.app[WORLD]
    business = world.business(request.match_info["phone_number_id"])
    content, mime_type, filename = await media.read_upload(request)
    item = world.media.add(
        media.MediaItem(
            world.new_id(1234567),
            content,
            mime_type,
            business.phone_number_id,
            world.clock.now(),
            media.UPLOADED_MEDIA_TTL_S,
            filename,
        )
    )
    return web.json_response({"id": item.id})


async def download_media(request: web.Request) -> web.Response:
    """A download URL from a look-up: the bytes while it lives, honouring ``Range``."""
    world = request.app[WORLD]
    item = world.media.by_url(request.query.get("hash", ""), world.clock.now())
    if item is None:
        raise web.HTTPNotFound(text="URL expired or unknown: look the media id up again")
    body = item.content
    if request.headers.get("Range", "").replace(" ", "") == "bytes=-0":
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{len(body)}"})
    try:
        wanted = request.http_range
    except ValueError:  # malformed, or several ranges: ignored, the whole file (RFC 9110 14.2)
        wanted = slice(None, None)
    headers = {"Accept-Ranges": "bytes"}
    if wanted.start is None and wanted.stop is None:
        return web.Response(body=body, content_type=item.mime_type, headers=headers)
    start, stop, _ = wanted.indices(len(body))
    if start >= len(body):
        raise web.HTTPRequestRangeNotSatisfiable(headers={"Content-Range": f"bytes */{len(body)}"})
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{len(body)}"
    return web.Response(
        status=206, body=body[start:stop], content_type=item.mime_type, headers=headers
    )


def _waba_node(world: World, business: Business, fields: str) -> dict[str, Any]:
    """The WABA node: its id and name, and the analytics fields asked for (analytics.py)."""
    node: dict[str, Any] = {"id": business.waba_id}
    sent = [
        m
        for m in world.sent.values()
        if world.businesses[m.phone_number_id].waba_id == business.waba_id
    ]
    computed = {
        "analytics": analytics.messaging,
        "pricing_analytics": analytics.pricing,
        "conversation_analytics": analytics.conversations,
    }
    for part in analytics.split_fields(fields):
        name = part.split(".", 1)[0]
        if name in computed:
            node[name] = computed[name](analytics.parse_query(part), sent)
        elif name == "name":
            node["name"] = business.verified_name
        else:
            raise errors.invalid_parameter(f"unknown field {name!r} on a WhatsApp Business Account")
    return node


async def template_analytics(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    world.waba(request.match_info["waba_id"])
    query = request.query
    try:
        start, end = int(query["start"]), int(query["end"])
        ids = [str(i) for i in json.loads(query.get("template_ids", "[]"))]
    except (KeyError, ValueError, TypeError):
        raise errors.missing_parameter(
            "start, end (unix seconds) and template_ids are needed"
        ) from None
    if not ids or len(ids) > 10:
        raise errors.invalid_parameter("template_ids: from 1 to 10 ids")
    return web.json_response(analytics.templates(start, end, ids, world.sent.values()))
