"""The body of ``POST /{version}/{phone-number-id}/messages``, checked as the Cloud API checks it.

Pure: a JSON value in, a ``SendRequest`` or ``ReadRequest`` out, or a ``GraphError`` raised.
Shapes and limits from ``../shared/cloudapi/REFERENCE.md`` 6.1-6.5 (common body, per-type
payloads, interactive kinds, templates, mark as read), 8.6 (sizes) and 10 (template creation);
codes from REFERENCE.md 7: a wrong JSON type is 100, a missing part 131008, a bad value 131009,
an unknown type 131051, an unknown or unapproved template 132001, a parameter count that does not
match the template 132000. Unknown keys are ignored, as Meta ignores them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias
from urllib.parse import urlsplit

from sandbox.errors import (
    invalid_parameter,
    invalid_value,
    missing_parameter,
    template_missing,
    template_parameter_count,
    unsupported_type,
)

TEXT_BODY_MAX: Final = 4096
CAPTION_MAX: Final = 1024
CALLBACK_DATA_MAX: Final = 512
INTERACTIVE_BODY_MAX: Final = 1024
INTERACTIVE_FOOTER_MAX: Final = 60
HEADER_TEXT_MAX: Final = 60
REPLY_BUTTONS_MAX: Final = 3
LIST_ROWS_MAX: Final = 10
SECTIONS_MAX: Final = 10
PRODUCTS_MAX: Final = 30
PHONE_DIGITS: Final = (5, 15)


@dataclass(frozen=True)
class TemplateSpec:
    """What the sandbox knows of a created template: enough to check a send against it."""

    name: str
    language: str
    status: str
    category: str
    header_params: int
    body_params: int
    button_params: tuple[int, ...]  # by button index


@dataclass(frozen=True)
class SendRequest:
    to: str  # as given: the success answer echoes it as contacts[].input
    wa_id: str
    type: str
    payload: Any  # the object named after the type (a list for "contacts")
    context_message_id: str | None
    biz_opaque_callback_data: str | None
    template: TemplateSpec | None  # set for type "template"


@dataclass(frozen=True)
class ReadRequest:
    message_id: str
    typing_indicator: bool


FindTemplate: TypeAlias = Callable[[str, str], TemplateSpec | None]  # (name, language code)
Validator: TypeAlias = Callable[[Any], None]
ActionRule: TypeAlias = Callable[[dict[str, Any]], None]

# --- template creation (REFERENCE.md 10.2) ---------------------------------------------------

_PLACEHOLDER: Final = re.compile(r"\{\{([A-Za-z0-9_]+)\}\}")
# A media, location or product header is always filled at send time by one parameter.
_FILLED_HEADER_FORMATS: Final = frozenset(
    {"IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION", "PRODUCT"}
)
# The coupon code and the one-time password are sent as one parameter of their button.
_ONE_PARAM_BUTTONS: Final = frozenset({"COPY_CODE", "OTP"})


def template_spec(created: dict[str, Any], status: str) -> TemplateSpec:
    """The parameter counts a send must match, from a template-creation payload."""
    category = str(created.get("category", ""))
    header = body = 0
    buttons: tuple[int, ...] = ()
    for component in created.get("components") or []:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header = _header_placeholders(component)
        elif kind == "BODY":
            # An authentication body is Meta's fixed text, its one parameter the code.
            body = 1 if category == "AUTHENTICATION" else _placeholders(component.get("text"))
        elif kind == "BUTTONS":
            buttons = tuple(_button_placeholders(b) for b in component.get("buttons") or [])
    return TemplateSpec(
        name=str(created["name"]),
        language=str(created["language"]),
        status=status,
        category=category,
        header_params=header,
        body_params=body,
        button_params=buttons,
    )


def _placeholders(text: Any) -> int:
    return len(set(_PLACEHOLDER.findall(text))) if isinstance(text, str) else 0


def _header_placeholders(component: dict[str, Any]) -> int:
    if str(component.get("format", "TEXT")).upper() in _FILLED_HEADER_FORMATS:
        return 1
    return _placeholders(component.get("text"))


def _button_placeholders(button: dict[str, Any]) -> int:
    kind = str(button.get("type", "")).upper()
    if kind == "URL":
        return _placeholders(button.get("url"))
    return 1 if kind in _ONE_PARAM_BUTTONS else 0


# --- the request ---------------------------------------------------------------------------


def parse_messages_request(body: Any, find_template: FindTemplate) -> SendRequest | ReadRequest:
    request = _object(body, "the request body")
    product = request.get("messaging_product")
    if product is None:
        raise missing_parameter("messaging_product is required")
    if product != "whatsapp":
        raise invalid_parameter('messaging_product must be "whatsapp"')
    if "status" in request:
        return _read_request(request)
    return _send_request(request, find_template)


def _read_request(request: dict[str, Any]) -> ReadRequest:
    if request["status"] != "read":
        raise invalid_parameter('status must be "read"')
    message_id = _str(request, "message_id", "message_id")
    indicator = request.get("typing_indicator")
    if indicator is not None and _object(indicator, "typing_indicator").get("type") != "text":
        raise invalid_value('typing_indicator.type must be "text"')
    return ReadRequest(message_id=message_id, typing_indicator=indicator is not None)


def _send_request(request: dict[str, Any], find_template: FindTemplate) -> SendRequest:
    to, wa_id = _recipient(request)
    kind = _opt_str(request, "type", "type")
    kind = "text" if kind is None else kind
    validate = _VALIDATORS.get(kind)
    if validate is None:
        raise unsupported_type(f"type {kind!r} is not a message type that can be sent")
    payload = request.get(kind)
    if payload is None:
        raise missing_parameter(f"{kind} is required for a message of type {kind}")
    validate(payload)
    context_message_id = _context_message_id(request, kind)
    callback_data = _opt_str(
        request, "biz_opaque_callback_data", "biz_opaque_callback_data", CALLBACK_DATA_MAX
    )
    return SendRequest(
        to=to,
        wa_id=wa_id,
        type=kind,
        payload=payload,
        context_message_id=context_message_id,
        biz_opaque_callback_data=callback_data,
        template=_approved_template(payload, find_template) if kind == "template" else None,
    )


def _recipient(request: dict[str, Any]) -> tuple[str, str]:
    """(``to`` as given, the id to deliver to); ``to`` wins over a BSUID ``recipient``."""
    to = _opt_str(request, "to", "to")
    if to is None:
        recipient = _opt_str(request, "recipient", "recipient")
        if not recipient:
            raise missing_parameter("to is required")
        return recipient, recipient
    recipient_type = _opt_str(request, "recipient_type", "recipient_type") or "individual"
    if recipient_type not in ("individual", "group"):
        raise invalid_value('recipient_type must be "individual" or "group"')
    if recipient_type == "group":
        return to, _str(request, "to", "to")
    return to, _wa_id(to)


def _wa_id(to: str) -> str:
    digits = re.sub(r"[+\s()-]", "", to)
    if not re.fullmatch(r"[0-9]+", digits):
        raise invalid_value(f"to ({to}) is not a phone number")
    low, high = PHONE_DIGITS
    if not low <= len(digits) <= high:
        raise invalid_value(f"to ({to}) must have {low} to {high} digits")
    return digits


def _context_message_id(request: dict[str, Any], kind: str) -> str | None:
    context = request.get("context")
    if context is None:
        return None
    if kind == "reaction":
        raise invalid_parameter("context is not allowed with a reaction")
    message_id = _object(context, "context").get("message_id")
    if not isinstance(message_id, str) or not message_id:
        raise invalid_parameter("context.message_id must be a string")
    return message_id


# --- JSON helpers: a wrong type is 100, a missing part 131008, a bad value 131009 -------------


def _object(value: Any, path: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_parameter(f"{path} must be a JSON object")
    return value


def _list(value: Any, path: str) -> list[Any]:
    if not isinstance(value, list):
        raise invalid_parameter(f"{path} must be a JSON array")
    return value


def _required_object(parent: dict[str, Any], key: str, path: str) -> dict[str, Any]:
    if parent.get(key) is None:
        raise missing_parameter(f"{path} is required")
    return _object(parent[key], path)


def _required_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    if parent.get(key) is None:
        raise missing_parameter(f"{path} is required")
    return _list(parent[key], path)


def _opt_list(parent: dict[str, Any], key: str, path: str) -> list[Any]:
    value = parent.get(key)
    return [] if value is None else _list(value, path)


def _opt_str(parent: dict[str, Any], key: str, path: str, max_len: int | None = None) -> str | None:
    value = parent.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid_parameter(f"{path} must be a string")
    if max_len is not None and len(value) > max_len:
        raise invalid_value(f"{path} is longer than {max_len} characters")
    return value


def _str(parent: dict[str, Any], key: str, path: str, max_len: int | None = None) -> str:
    value = _opt_str(parent, key, path, max_len)
    if not value:
        raise missing_parameter(f"{path} is required")
    return value


def _opt_bool(parent: dict[str, Any], key: str, path: str) -> None:
    if parent.get(key) is not None and not isinstance(parent[key], bool):
        raise invalid_parameter(f"{path} must be true or false")


def _one_of(parent: dict[str, Any], key: str, path: str, allowed: tuple[str, ...]) -> None:
    value = _opt_str(parent, key, path)
    if value is not None and value not in allowed:
        raise invalid_value(f"{path} must be one of {', '.join(allowed)}")


def _count(items: list[Any], low: int, high: int, path: str) -> None:
    if not low <= len(items) <= high:
        raise invalid_value(f"{path} must hold {low} to {high} items, not {len(items)}")


def _http_url(url: str, path: str) -> None:
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise invalid_value(f"{path} must be an http(s) URL")


# --- per-type payloads (REFERENCE.md 6.2) --------------------------------------------------


def _text(payload: Any) -> None:
    text = _object(payload, "text")
    body = _str(text, "body", "text.body")
    if len(body) > TEXT_BODY_MAX:
        # 100, not 131009: the kit's sample answer (responses/err_100_invalid_parameter.json).
        raise invalid_parameter(f"text.body is longer than {TEXT_BODY_MAX} characters")
    _opt_bool(text, "preview_url", "text.preview_url")


def _media_source(media: dict[str, Any], path: str) -> None:
    media_id = _opt_str(media, "id", f"{path}.id")
    link = _opt_str(media, "link", f"{path}.link")
    if not media_id and not link:
        raise missing_parameter(f"{path}.id or {path}.link is required")
    if media_id and link:
        raise invalid_parameter(f"{path} takes id or link, not both")
    if link:
        _http_url(link, f"{path}.link")


_MEDIA_EXTRAS: Final = (
    ("caption", ("image", "video", "document")),
    ("filename", ("document",)),
    ("voice", ("audio",)),
)


def _media(kind: str) -> Validator:
    def validate(payload: Any) -> None:
        media = _object(payload, kind)
        _media_source(media, kind)
        for key, kinds in _MEDIA_EXTRAS:
            if key in media and kind not in kinds:
                raise invalid_parameter(f"{kind}.{key} is not allowed for {kind}")
        _opt_str(media, "caption", f"{kind}.caption", CAPTION_MAX)
        _opt_str(media, "filename", f"{kind}.filename")
        _opt_bool(media, "voice", f"{kind}.voice")

    return validate


def _location(payload: Any) -> None:
    location = _object(payload, "location")
    for key, bound in (("latitude", 90), ("longitude", 180)):
        value = location.get(key)
        if value is None:
            raise missing_parameter(f"location.{key} is required")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise invalid_parameter(f"location.{key} must be a number")
        if not -bound <= value <= bound:
            raise invalid_value(f"location.{key} must be between -{bound} and {bound}")
    _opt_str(location, "name", "location.name")
    _opt_str(location, "address", "location.address")


def _contacts(payload: Any) -> None:
    contacts = _list(payload, "contacts")
    if not contacts:
        raise missing_parameter("contacts must hold at least one contact")
    for i, value in enumerate(contacts):
        path = f"contacts[{i}]"
        name = _required_object(_object(value, path), "name", f"{path}.name")
        _str(name, "formatted_name", f"{path}.name.formatted_name")


def _reaction(payload: Any) -> None:
    reaction = _object(payload, "reaction")
    _str(reaction, "message_id", "reaction.message_id")
    if reaction.get("emoji") is None:
        raise missing_parameter("reaction.emoji is required")
    _opt_str(reaction, "emoji", "reaction.emoji")  # "" removes the reaction


# --- interactive (REFERENCE.md 6.3) --------------------------------------------------------

_ACTION: Final = "interactive.action"


def _interactive(payload: Any) -> None:
    interactive = _object(payload, "interactive")
    kind = _str(interactive, "type", "interactive.type")
    rule = _ACTION_RULES.get(kind)
    if rule is None:
        raise invalid_value(f"interactive.type {kind!r} is not one of {', '.join(_ACTION_RULES)}")
    _interactive_header(interactive, kind)
    if interactive.get("body") is not None or kind != "product":
        body = _required_object(interactive, "body", "interactive.body")
        _str(body, "text", "interactive.body.text", INTERACTIVE_BODY_MAX)
    if interactive.get("footer") is not None:
        footer = _object(interactive["footer"], "interactive.footer")
        _str(footer, "text", "interactive.footer.text", INTERACTIVE_FOOTER_MAX)
    rule(_required_object(interactive, "action", _ACTION))


def _interactive_header(interactive: dict[str, Any], kind: str) -> None:
    header = interactive.get("header")
    if header is None:
        if kind == "product_list":
            raise missing_parameter("interactive.header is required for product_list")
        return
    if kind == "product":
        raise invalid_value("interactive.header is not allowed for product")
    header = _object(header, "interactive.header")
    header_type = _str(header, "type", "interactive.header.type")
    if header_type == "text":
        _str(header, "text", "interactive.header.text", HEADER_TEXT_MAX)
    elif header_type in ("image", "video", "document") and kind not in ("list", "product_list"):
        path = f"interactive.header.{header_type}"
        _media_source(_required_object(header, header_type, path), path)
    else:
        raise invalid_value(f"interactive.header.type {header_type!r} is not allowed for {kind}")


def _action_name(expected: str) -> ActionRule:
    def rule(action: dict[str, Any]) -> None:
        if _str(action, "name", f"{_ACTION}.name") != expected:
            raise invalid_value(f'{_ACTION}.name must be "{expected}"')

    return rule


def _reply_buttons(action: dict[str, Any]) -> None:
    buttons = _required_list(action, "buttons", f"{_ACTION}.buttons")
    _count(buttons, 1, REPLY_BUTTONS_MAX, f"{_ACTION}.buttons")
    titles = [_reply_button(value, f"{_ACTION}.buttons[{i}]") for i, value in enumerate(buttons)]
    if len(set(titles)) != len(titles):
        raise invalid_value(f"{_ACTION}.buttons must have unique titles")


def _reply_button(value: Any, path: str) -> str:
    button = _object(value, path)
    if _str(button, "type", f"{path}.type") != "reply":
        raise invalid_value(f'{path}.type must be "reply"')
    reply = _required_object(button, "reply", f"{path}.reply")
    button_id = _str(reply, "id", f"{path}.reply.id", 256)
    if button_id != button_id.strip():
        raise invalid_value(f"{path}.reply.id must not start or end with spaces")
    return _str(reply, "title", f"{path}.reply.title", 20)


def _section_title(section: dict[str, Any], path: str, required: bool) -> None:
    title = _opt_str(section, "title", f"{path}.title", 24)
    if required and not title:
        raise missing_parameter(f"{path}.title is required when there is more than one section")


def _list_sections(action: dict[str, Any]) -> None:
    _str(action, "button", f"{_ACTION}.button", 20)
    sections = _required_list(action, "sections", f"{_ACTION}.sections")
    _count(sections, 1, SECTIONS_MAX, f"{_ACTION}.sections")
    rows = sum(
        _list_section(value, f"{_ACTION}.sections[{i}]", len(sections) > 1)
        for i, value in enumerate(sections)
    )
    if rows > LIST_ROWS_MAX:
        raise invalid_value(f"{_ACTION}.sections hold {rows} rows, more than {LIST_ROWS_MAX}")


def _list_section(value: Any, path: str, titled: bool) -> int:
    section = _object(value, path)
    _section_title(section, path, titled)
    rows = _required_list(section, "rows", f"{path}.rows")
    if not rows:
        raise missing_parameter(f"{path}.rows must hold at least one row")
    for j, row_value in enumerate(rows):
        row = _object(row_value, f"{path}.rows[{j}]")
        _str(row, "id", f"{path}.rows[{j}].id", 200)
        _str(row, "title", f"{path}.rows[{j}].title", 24)
        _opt_str(row, "description", f"{path}.rows[{j}].description", 72)
    return len(rows)


def _cta_url(action: dict[str, Any]) -> None:
    _action_name("cta_url")(action)
    parameters = _required_object(action, "parameters", f"{_ACTION}.parameters")
    _str(parameters, "display_text", f"{_ACTION}.parameters.display_text", 20)
    _http_url(_str(parameters, "url", f"{_ACTION}.parameters.url"), f"{_ACTION}.parameters.url")


def _flow(action: dict[str, Any]) -> None:
    _action_name("flow")(action)
    path = f"{_ACTION}.parameters"
    parameters = _required_object(action, "parameters", path)
    _str(parameters, "flow_message_version", f"{path}.flow_message_version")
    flow_id = _opt_str(parameters, "flow_id", f"{path}.flow_id")
    if not flow_id and not _opt_str(parameters, "flow_name", f"{path}.flow_name"):
        raise missing_parameter(f"{path}.flow_id or {path}.flow_name is required")
    _str(parameters, "flow_cta", f"{path}.flow_cta")
    _opt_str(parameters, "flow_token", f"{path}.flow_token")
    _one_of(parameters, "mode", f"{path}.mode", ("published", "draft"))
    _one_of(parameters, "flow_action", f"{path}.flow_action", ("navigate", "data_exchange"))
    if parameters.get("flow_action_payload") is not None:
        _flow_action_payload(parameters["flow_action_payload"], f"{path}.flow_action_payload")


def _flow_action_payload(value: Any, path: str) -> None:
    payload = _object(value, path)
    _str(payload, "screen", f"{path}.screen")
    if "data" in payload and not _object(payload["data"], f"{path}.data"):
        raise invalid_value(f"{path}.data must not be empty")


def _product(action: dict[str, Any]) -> None:
    _str(action, "catalog_id", f"{_ACTION}.catalog_id")
    _str(action, "product_retailer_id", f"{_ACTION}.product_retailer_id")


def _product_list(action: dict[str, Any]) -> None:
    _str(action, "catalog_id", f"{_ACTION}.catalog_id")
    sections = _required_list(action, "sections", f"{_ACTION}.sections")
    _count(sections, 1, SECTIONS_MAX, f"{_ACTION}.sections")
    items = sum(
        _product_section(value, f"{_ACTION}.sections[{i}]", len(sections) > 1)
        for i, value in enumerate(sections)
    )
    if items > PRODUCTS_MAX:
        raise invalid_value(f"{_ACTION}.sections hold {items} products, more than {PRODUCTS_MAX}")


def _product_section(value: Any, path: str, titled: bool) -> int:
    section = _object(value, path)
    _section_title(section, path, titled)
    items = _required_list(section, "product_items", f"{path}.product_items")
    if not items:
        raise missing_parameter(f"{path}.product_items must hold at least one product")
    for j, item in enumerate(items):
        product = _object(item, f"{path}.product_items[{j}]")
        _str(product, "product_retailer_id", f"{path}.product_items[{j}].product_retailer_id")
    return len(items)


_ACTION_RULES: Final[dict[str, ActionRule]] = {
    "button": _reply_buttons,
    "list": _list_sections,
    "cta_url": _cta_url,
    "flow": _flow,
    "product": _product,
    "product_list": _product_list,
    "catalog_message": _action_name("catalog_message"),
    "location_request_message": _action_name("send_location"),
    "call_permission_request": _action_name("call_permission_request"),
}

# --- templates (REFERENCE.md 6.4) ----------------------------------------------------------

_COMPONENT_TYPES: Final = ("header", "body", "button", "carousel", "limited_time_offer")
# Button data, not placeholders: a quick reply's payload and a flow button's action.
_BUTTON_DATA: Final = frozenset({"payload", "action"})


def _template(payload: Any) -> None:
    template = _object(payload, "template")
    _str(template, "name", "template.name")
    language = _required_object(template, "language", "template.language")
    _str(language, "code", "template.language.code")
    for i, value in enumerate(_opt_list(template, "components", "template.components")):
        _component(value, f"template.components[{i}]")


def _component(value: Any, path: str) -> None:
    component = _object(value, path)
    kind = _str(component, "type", f"{path}.type").lower()
    if kind not in _COMPONENT_TYPES:
        raise invalid_value(f"{path}.type must be one of {', '.join(_COMPONENT_TYPES)}")
    if kind == "button":
        _str(component, "sub_type", f"{path}.sub_type")
        _button_index(component, path)
    for j, parameter in enumerate(_opt_list(component, "parameters", f"{path}.parameters")):
        _parameter(parameter, f"{path}.parameters[{j}]", kind)


def _button_index(component: dict[str, Any], path: str) -> int:
    index = component.get("index")
    if index is None:
        raise missing_parameter(f"{path}.index is required")
    if isinstance(index, bool) or not isinstance(index, int | str):
        raise invalid_parameter(f"{path}.index must be a string or an integer")
    if not re.fullmatch(r"[0-9]", str(index)):
        raise invalid_value(f"{path}.index must be 0 to 9")
    return int(index)


def _parameter(value: Any, path: str, component: str) -> None:
    parameter = _object(value, path)
    kind = _str(parameter, "type", f"{path}.type")
    if kind == "text":
        _str(parameter, "text", f"{path}.text", HEADER_TEXT_MAX if component == "header" else None)
    elif parameter.get(kind) is None:
        raise missing_parameter(f"{path}.{kind} is required")
    elif kind in ("image", "video", "document"):
        _media_source(_object(parameter[kind], f"{path}.{kind}"), f"{path}.{kind}")


def _approved_template(payload: dict[str, Any], find_template: FindTemplate) -> TemplateSpec:
    name, code = payload["name"], payload["language"]["code"]
    spec = find_template(name, code)
    if spec is None or spec.status != "APPROVED":
        raise template_missing(name, code)
    header, body, buttons = _sent_counts(payload.get("components") or [])
    _expect_count("header", header, spec.header_params)
    _expect_count("body", body, spec.body_params)
    for index in buttons:
        if index >= len(spec.button_params):
            raise invalid_value(f"template {name} has no button at index {index}")
    for index, expected in enumerate(spec.button_params):
        _expect_count(f"button {index}", buttons.get(index, 0), expected)
    return spec


def _sent_counts(components: list[dict[str, Any]]) -> tuple[int, int, dict[int, int]]:
    """Parameters sent for the header, the body, and each button by index."""
    header = body = 0
    buttons: dict[int, int] = {}
    for i, component in enumerate(components):
        kind = component["type"].lower()
        parameters = component.get("parameters") or []
        if kind == "header":
            header += len(parameters)
        elif kind == "body":
            body += len(parameters)
        elif kind == "button":
            index = _button_index(component, f"template.components[{i}]")
            if index in buttons:
                raise invalid_value(f"template.components[{i}].index {index} is sent twice")
            buttons[index] = sum(p["type"] not in _BUTTON_DATA for p in parameters)
    return header, body, buttons


def _expect_count(where: str, sent: int, expected: int) -> None:
    if sent != expected:
        raise template_parameter_count(
            f"{where}: number of parameters ({sent}) does not match the expected number of "
            f"params ({expected})"
        )


_VALIDATORS: Final[dict[str, Validator]] = {
    "text": _text,
    "image": _media("image"),
    "audio": _media("audio"),
    "video": _media("video"),
    "document": _media("document"),
    "sticker": _media("sticker"),
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "template": _template,
    "reaction": _reaction,
}
