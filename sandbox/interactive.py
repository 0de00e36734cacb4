"""Interactive messages as the Cloud API checks them (docs/cloudapi/sending.md): reply buttons,
lists, call-to-action URLs, flows, products, location requests. Pure; raises GraphError."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final, TypeAlias

from wapipe.sandbox.errors import invalid_value, missing_parameter
from wapipe.sandbox.json_checks import (
    count_between,
    http_url,
    media_source,
    object_at,
    one_of,
    optional_str,
    required_list,
    required_object,
    string_at,
)

INTERACTIVE_BODY_MAX: Final = 1024
INTERACTIVE_FOOTER_MAX: Final = 60
HEADER_TEXT_MAX: Final = 60
REPLY_BUTTONS_MAX: Final = 3
LIST_ROWS_MAX: Final = 10
SECTIONS_MAX: Final = 10
PRODUCTS_MAX: Final = 30

ActionRule: TypeAlias = Callable[[dict[str, Any]], None]


_ACTION: Final = "interactive.action"


def check_interactive(payload: Any) -> None:
    interactive = object_at(payload, "interactive")
    kind = string_at(interactive, "type", "interactive.type")
    rule = _ACTION_RULES.get(kind)
    if rule is None:
        raise invalid_value(f"interactive.type {kind!r} is not one of {', '.join(_ACTION_RULES)}")
    _interactive_header(interactive, kind)
    if interactive.get("body") is not None or kind != "product":
        body = required_object(interactive, "body", "interactive.body")
        string_at(body, "text", "interactive.body.text", INTERACTIVE_BODY_MAX)
    if interactive.get("footer") is not None:
        footer = object_at(interactive["footer"], "interactive.footer")
        string_at(footer, "text", "interactive.footer.text", INTERACTIVE_FOOTER_MAX)
    rule(required_object(interactive, "action", _ACTION))


def _interactive_header(interactive: dict[str, Any], kind: str) -> None:
    header = interactive.get("header")
    if header is None:
        if kind == "product_list":
            raise missing_parameter("interactive.header is required for product_list")
        return
    if kind == "product":
        raise invalid_value("interactive.header is not allowed for product")
    header = object_at(header, "interactive.header")
    header_type = string_at(header, "type", "interactive.header.type")
    if header_type == "text":
        string_at(header, "text", "interactive.header.text", HEADER_TEXT_MAX)
    elif header_type in ("image", "video", "document") and kind not in ("list", "product_list"):
        path = f"interactive.header.{header_type}"
        media_source(required_object(header, header_type, path), path)
    else:
        raise invalid_value(f"interactive.header.type {header_type!r} is not allowed for {kind}")


def _action_name(expected: str) -> ActionRule:
    def rule(action: dict[str, Any]) -> None:
        if string_at(action, "name", f"{_ACTION}.name") != expected:
            raise invalid_value(f'{_ACTION}.name must be "{expected}"')

    return rule


def _reply_buttons(action: dict[str, Any]) -> None:
    buttons = required_list(action, "buttons", f"{_ACTION}.buttons")
    count_between(buttons, 1, REPLY_BUTTONS_MAX, f"{_ACTION}.buttons")
    titles = [_reply_button(value, f"{_ACTION}.buttons[{i}]") for i, value in enumerate(buttons)]
    if len(set(titles)) != len(titles):
        raise invalid_value(f"{_ACTION}.buttons must have unique titles")


def _reply_button(value: Any, path: str) -> str:
    button = object_at(value, path)
    if string_at(button, "type", f"{path}.type") != "reply":
        raise invalid_value(f'{path}.type must be "reply"')
    reply = required_object(button, "reply", f"{path}.reply")
    button_id = string_at(reply, "id", f"{path}.reply.id", 256)
    if button_id != button_id.strip():
        raise invalid_value(f"{path}.reply.id must not start or end with spaces")
    return string_at(reply, "title", f"{path}.reply.title", 20)


def _section_title(section: dict[str, Any], path: str, required: bool) -> None:
    title = optional_str(section, "title", f"{path}.title", 24)
    if required and not title:
        raise missing_parameter(f"{path}.title is required when there is more than one section")


def _list_sections(action: dict[str, Any]) -> None:
    string_at(action, "button", f"{_ACTION}.button", 20)
    sections = required_list(action, "sections", f"{_ACTION}.sections")
    count_between(sections, 1, SECTIONS_MAX, f"{_ACTION}.sections")
    rows = sum(
        _list_section(value, f"{_ACTION}.sections[{i}]", len(sections) > 1)
        for i, value in enumerate(sections)
    )
    if rows > LIST_ROWS_MAX:
        raise invalid_value(f"{_ACTION}.sections hold {rows} rows, more than {LIST_ROWS_MAX}")


def _list_section(value: Any, path: str, titled: bool) -> int:
    section = object_at(value, path)
    _section_title(section, path, titled)
    rows = required_list(section, "rows", f"{path}.rows")
    if not rows:
        raise missing_parameter(f"{path}.rows must hold at least one row")
    for j, row_value in enumerate(rows):
        row = object_at(row_value, f"{path}.rows[{j}]")
        string_at(row, "id", f"{path}.rows[{j}].id", 200)
        string_at(row, "title", f"{path}.rows[{j}].title", 24)
        optional_str(row, "description", f"{path}.rows[{j}].description", 72)
    return len(rows)


def _cta_url(action: dict[str, Any]) -> None:
    _action_name("cta_url")(action)
    parameters = required_object(action, "parameters", f"{_ACTION}.parameters")
    string_at(parameters, "display_text", f"{_ACTION}.parameters.display_text", 20)
    http_url(string_at(parameters, "url", f"{_ACTION}.parameters.url"), f"{_ACTION}.parameters.url")


def _flow(action: dict[str, Any]) -> None:
    _action_name("flow")(action)
    path = f"{_ACTION}.parameters"
    parameters = required_object(action, "parameters", path)
    string_at(parameters, "flow_message_version", f"{path}.flow_message_version")
    flow_id = optional_str(parameters, "flow_id", f"{path}.flow_id")
    if not flow_id and not optional_str(parameters, "flow_name", f"{path}.flow_name"):
        raise missing_parameter(f"{path}.flow_id or {path}.flow_name is required")
    string_at(parameters, "flow_cta", f"{path}.flow_cta")
    optional_str(parameters, "flow_token", f"{path}.flow_token")
    one_of(parameters, "mode", f"{path}.mode", ("published", "draft"))
    one_of(parameters, "flow_action", f"{path}.flow_action", ("navigate", "data_exchange"))
    if parameters.get("flow_action_payload") is not None:
        _flow_action_payload(parameters["flow_action_payload"], f"{path}.flow_action_payload")


def _flow_action_payload(value: Any, path: str) -> None:
    payload = object_at(value, path)
    string_at(payload, "screen", f"{path}.screen")
    if "data" in payload and not object_at(payload["data"], f"{path}.data"):
        raise invalid_value(f"{path}.data must not be empty")


def _product(action: dict[str, Any]) -> None:
    string_at(action, "catalog_id", f"{_ACTION}.catalog_id")
    string_at(action, "product_retailer_id", f"{_ACTION}.product_retailer_id")


def _product_list(action: dict[str, Any]) -> None:
    string_at(action, "catalog_id", f"{_ACTION}.catalog_id")
    sections = required_list(action, "sections", f"{_ACTION}.sections")
    count_between(sections, 1, SECTIONS_MAX, f"{_ACTION}.sections")
    items = sum(
        _product_section(value, f"{_ACTION}.sections[{i}]", len(sections) > 1)
        for i, value in enumerate(sections)
    )
    if items > PRODUCTS_MAX:
        raise invalid_value(f"{_ACTION}.sections hold {items} products, more than {PRODUCTS_MAX}")


def _product_section(value: Any, path: str, titled: bool) -> int:
    section = object_at(value, path)
    _section_title(section, path, titled)
    items = required_list(section, "product_items", f"{path}.product_items")
    if not items:
        raise missing_parameter(f"{path}.product_items must hold at least one product")
    for j, item in enumerate(items):
        product = object_at(item, f"{path}.product_items[{j}]")
        string_at(product, "product_retailer_id", f"{path}.product_items[{j}].product_retailer_id")
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
