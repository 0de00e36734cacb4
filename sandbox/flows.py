"""WhatsApp Flows in the sandbox (docs/cloudapi/flows.md).

POST /{version}/{phone-number-id}/whatsapp_business_encryption   business_public_key (form
                                                                  or JSON): the number's
                                                                  Flows public key
GET  /{version}/{phone-number-id}/whatsapp_business_encryption   it, with its signature
                                                                  status
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox import errors
from sandbox.json_checks import json_body, object_at
from sandbox.keys import WORLD
from shared.flows.keys import KEY_BITS, FlowKeyError, load_public


def routes() -> list[web.RouteDef]:
    path = "/{version}/{phone_number_id}/whatsapp_business_encryption"
    return [web.post(path, set_public_key), web.get(path, read_public_key)]


async def _fields(request: web.Request) -> dict[str, Any]:
    """Meta's examples post a form; a JSON body is accepted as well."""
    if request.content_type == "application/json":
        return object_at(await json_body(request), "the request body")
    return dict(await request.post())


async def set_public_key(request: web.Request) -> web.Response:
    business = request.app[WORLD].business(request.match_info["phone_number_id"])
    pem = (await _fields(request)).get("business_public_key")
    if not isinstance(pem, str) or not pem.strip():
        raise errors.missing_parameter("business_public_key is required")
    try:
        key = load_public(pem)
    except FlowKeyError as exc:
        raise errors.invalid_parameter(f"business_public_key: {exc}") from None
    if key.key_size != KEY_BITS:
        raise errors.invalid_parameter(f"business_public_key must be {KEY_BITS}-bit RSA")
    business.business_public_key = pem.strip()
    return web.json_response({"success": True})


async def read_public_key(request: web.Request) -> web.Response:
    business = request.app[WORLD].business(request.match_info["phone_number_id"])
    key = business.business_public_key
    entry = {
        "business_public_key": key,
        "business_public_key_signature_status": "VALID" if key else "MISMATCH",
    }
    return web.json_response({"data": [entry] if key else []})
