"""Templates as a send refers to them: what the sandbox keeps of a created template
(docs/cloudapi/templates.md) and the check of a template message against it (sending.md): 132001 for
a template that does not exist in that language or is not approved, 132000 for a parameter count
that does not match. Pure; raises GraphError."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from wapipe.sandbox.errors import (
    invalid_parameter,
    invalid_value,
    missing_parameter,
    template_missing,
    template_parameter_count,
)
from wapipe.sandbox.json_checks import (
    media_source,
    object_at,
    optional_list,
    required_object,
    string_at,
)

HEADER_TEXT_MAX: Final = 60


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
    id: str = ""  # the template's Graph id, when it has one


FindTemplate: TypeAlias = Callable[[str, str], TemplateSpec | None]  # (name, language code)

# --- template creation (docs/cloudapi/templates.md) -----------------------------------------------

_PLACEHOLDER: Final = re.compile(r"\{\{([A-Za-z0-9_]+)\}\}")
# A media, location or product header is always filled at send time by one parameter.
_FILLED_HEADER_FORMATS: Final = frozenset(
    {"IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION", "PRODUCT"}
)
# The coupon code and the one-time password are sent as one parameter of their button.
_ONE_PARAM_BUTTONS: Final = frozenset({"COPY_CODE", "OTP"})


def template_spec(created: dict[str, Any], status: str, template_id: str = "") -> TemplateSpec:
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
        id=template_id,
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


# --- templates (docs/cloudapi/sending.md) ---------------------------------------------------------

_COMPONENT_TYPES: Final = ("header", "body", "button", "carousel", "limited_time_offer")
# Button data, not placeholders: a quick reply's payload and a flow button's action.
_BUTTON_DATA: Final = frozenset({"payload", "action"})


def check_template_payload(payload: Any) -> None:
    template = object_at(payload, "template")
    string_at(template, "name", "template.name")
    language = required_object(template, "language", "template.language")
    string_at(language, "code", "template.language.code")
    for i, value in enumerate(optional_list(template, "components", "template.components")):
        _component(value, f"template.components[{i}]")


def _component(value: Any, path: str) -> None:
    component = object_at(value, path)
    kind = string_at(component, "type", f"{path}.type").lower()
    if kind not in _COMPONENT_TYPES:
        raise invalid_value(f"{path}.type must be one of {', '.join(_COMPONENT_TYPES)}")
    if kind == "button":
        string_at(component, "sub_type", f"{path}.sub_type")
        _button_index(component, path)
    for j, parameter in enumerate(optional_list(component, "parameters", f"{path}.parameters")):
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
    parameter = object_at(value, path)
    kind = string_at(parameter, "type", f"{path}.type")
    if kind == "text":
        string_at(
            parameter, "text", f"{path}.text", HEADER_TEXT_MAX if component == "header" else None
        )
    elif parameter.get(kind) is None:
        raise missing_parameter(f"{path}.{kind} is required")
    elif kind in ("image", "video", "document"):
        media_source(object_at(parameter[kind], f"{path}.{kind}"), f"{path}.{kind}")


def approved_template(payload: dict[str, Any], find_template: FindTemplate) -> TemplateSpec:
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
