"""WhatsApp Flows in the sandbox: the Graph API's Flows and encryption endpoints
(docs/cloudapi/flows.md). A customer filling a flow is sandbox/flow_customer.py.

    POST   /{version}/{phone-number-id}/whatsapp_business_encryption  business_public_key
    GET    /{version}/{phone-number-id}/whatsapp_business_encryption
    POST   /{version}/{waba-id}/flows          name, categories, flow_json?, endpoint_uri?, publish?
    GET    /{version}/{waba-id}/flows
    GET    /{version}/{flow-id}                 (through graph.read_node)
    POST   /{version}/{flow-id}                 (through business.update_node) a draft's details
    POST   /{version}/{flow-id}/assets          multipart file (FLOW_JSON) (drafts)
    POST   /{version}/{flow-id}/publish         a draft without validation errors
    POST   /{version}/{flow-id}/deprecate       a published flow
    DELETE /{version}/{flow-id}                 (through graph.delete_node) a draft

Validation errors are the ones wapipe checks itself (shared/flows/flow_json.py); Meta checks
more (components, their properties).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import web

from wapipe.sandbox import errors
from wapipe.sandbox.json_checks import json_body, object_at
from wapipe.sandbox.keys import WORLD
from wapipe.sandbox.state import World
from wapipe.shared.flows.flow_json import problems
from wapipe.shared.flows.keys import KEY_BITS, FlowKeyError, load_public

DRAFT: Final = "DRAFT"
PUBLISHED: Final = "PUBLISHED"
DEPRECATED: Final = "DEPRECATED"


@dataclass
class FlowRecord:
    id: str
    waba_id: str
    name: str
    categories: list[str]
    endpoint_uri: str = ""
    flow_json: dict[str, Any] | None = None
    status: str = DRAFT
    # (latency in seconds, HTTP status or 0 when unreachable), of every endpoint call
    calls: list[tuple[float, int]] = field(default_factory=list)

    @property
    def validation_errors(self) -> list[dict[str, str]]:
        found = ["no Flow JSON"] if self.flow_json is None else problems(self.flow_json)
        return [{"error": "INVALID_FLOW_JSON", "message": message} for message in found]

    def node(self) -> dict[str, Any]:
        flow_json = self.flow_json or {}
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "categories": self.categories,
            "validation_errors": self.validation_errors,
            "json_version": flow_json.get("version"),
            "data_api_version": flow_json.get("data_api_version"),
            "endpoint_uri": self.endpoint_uri or None,
        }


def routes() -> list[web.RouteDef]:
    encryption = "/{version}/{phone_number_id}/whatsapp_business_encryption"
    return [
        web.post(encryption, set_public_key),
        web.get(encryption, read_public_key),
        web.post("/{version}/{waba_id}/flows", create_flow),
        web.get("/{version}/{waba_id}/flows", list_flows),
        web.post("/{version}/{flow_id}/assets", upload_flow_json),
        web.post("/{version}/{flow_id}/publish", publish_flow),
        web.post("/{version}/{flow_id}/deprecate", deprecate_flow),
    ]


async def _fields(request: web.Request) -> dict[str, Any]:
    """Meta's examples post forms and JSON; both are accepted."""
    if request.content_type == "application/json":
        return object_at(await json_body(request), "the request body")
    return dict(await request.post())


# --- keys --------------------------------------------------------------------------------------


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
    entry = {"business_public_key": key, "business_public_key_signature_status": "VALID"}
    return web.json_response({"data": [entry] if key else []})


# --- flows -------------------------------------------------------------------------------------


def flow_of(world: World, flow_id: str) -> FlowRecord:
    record = world.flows.get(flow_id)
    if not isinstance(record, FlowRecord):
        raise errors.unknown_object(flow_id)
    return record


def _flow_json(value: Any) -> dict[str, Any]:
    try:
        decoded = json.loads(value) if isinstance(value, str | bytes) else value
    except ValueError:
        raise errors.invalid_parameter("flow_json is not valid JSON") from None
    if not isinstance(decoded, dict):
        raise errors.invalid_parameter("flow_json must be a JSON object")
    return decoded


def _categories(value: Any) -> list[str]:
    if isinstance(value, str):
        value = json.loads(value) if value.startswith("[") else [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise errors.missing_parameter("categories: at least one is required")
    return value


async def create_flow(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    business = world.waba(request.match_info["waba_id"])
    fields = await _fields(request)
    name = fields.get("name")
    if not isinstance(name, str) or not name:
        raise errors.missing_parameter("name is required")
    if any(f.name == name and f.waba_id == business.waba_id for f in world.flows.values()):
        raise errors.invalid_parameter("Flow name is not unique")
    record = FlowRecord(
        world.new_id(7777), business.waba_id, name, _categories(fields.get("categories"))
    )
    record.endpoint_uri = str(fields.get("endpoint_uri") or "")
    if fields.get("flow_json") is not None:
        record.flow_json = _flow_json(fields["flow_json"])
    world.flows[record.id] = record
    if fields.get("publish") in (True, "true") and not record.validation_errors:
        record.status = PUBLISHED
    answer = {"id": record.id, "success": True, "validation_errors": record.validation_errors}
    return web.json_response(answer)


async def list_flows(request: web.Request) -> web.Response:
    world = request.app[WORLD]
    business = world.waba(request.match_info["waba_id"])
    found = [f.node() for f in world.flows.values() if f.waba_id == business.waba_id]
    return web.json_response({"data": found, "paging": {"cursors": {"before": "", "after": ""}}})


def _draft(world: World, flow_id: str) -> FlowRecord:
    record = flow_of(world, flow_id)
    if record.status != DRAFT:
        raise errors.invalid_parameter(f"the flow is {record.status}: only a draft can change")
    return record


async def update_flow(request: web.Request, flow_id: str) -> web.Response:
    """``POST /{flow-id}`` (routed by sandbox/business.py's ``update_node``): a draft's details."""
    record = _draft(request.app[WORLD], flow_id)
    fields = await _fields(request)
    record.name = str(fields.get("name") or record.name)
    record.endpoint_uri = str(fields.get("endpoint_uri") or record.endpoint_uri)
    if "categories" in fields:
        record.categories = _categories(fields["categories"])
    return web.json_response({"success": True})


async def upload_flow_json(request: web.Request) -> web.Response:
    record = _draft(request.app[WORLD], request.match_info["flow_id"])
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        raise errors.missing_parameter("file is required (multipart)")
    record.flow_json = _flow_json(upload.file.read())
    return web.json_response({"success": True, "validation_errors": record.validation_errors})


async def publish_flow(request: web.Request) -> web.Response:
    record = _draft(request.app[WORLD], request.match_info["flow_id"])
    if record.validation_errors:
        raise errors.invalid_parameter("the flow has validation errors: fix them first")
    record.status = PUBLISHED
    return web.json_response({"success": True})


async def deprecate_flow(request: web.Request) -> web.Response:
    record = flow_of(request.app[WORLD], request.match_info["flow_id"])
    if record.status != PUBLISHED:
        raise errors.invalid_parameter(f"the flow is {record.status}: only a published one")
    record.status = DEPRECATED
    return web.json_response({"success": True})


def delete_flow(world: World, flow_id: str) -> None:
    """``DELETE /{flow-id}`` (graph.delete_node hands it here)."""
    _draft(world, flow_id)
    del world.flows[flow_id]
