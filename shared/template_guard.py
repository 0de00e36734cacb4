"""Whether a template job may be sent, judged against the templates wapipe has stored: pure.

With ``WAPIPE_SENDER_CHECK_TEMPLATES`` on, the sender refuses a template job before any call when
the template is unknown in that language, not ``APPROVED`` (docs/cloudapi/templates.md: only
approved can be sent), or given a number of parameters other than its header, body and buttons take
(what the Cloud API would refuse with 132001 or 132000). A template stored from its webhooks alone
(no components yet: never synced) is checked for its status only.

    expected_counts(components, category) -> ParameterCounts   from the template's components
    sent_counts(template) -> ParameterCounts                   from a job's template message
    refusal(template, stored) -> str | None                    None: may be sent
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from wapipe.shared.schemas.template import (
    ActionParameter,
    BodyComponent,
    ButtonComponent,
    HeaderComponent,
    PayloadParameter,
    Template,
)

APPROVED: Final = "APPROVED"
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
# A media, location or product header is always filled at send time by one parameter.
_FILLED_HEADERS: Final = frozenset({"IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION", "PRODUCT"})
# A coupon code and a one-time password are sent as one parameter of their button.
_ONE_PARAMETER_BUTTONS: Final = frozenset({"COPY_CODE", "OTP"})


class StoredTemplate(msgspec.Struct, frozen=True, kw_only=True):
    """A template as wapipe stored it (from ``templates sync`` or a status webhook)."""

    template_id: str
    name: str
    language: str
    status: str | None
    category: str | None = None
    components: list[dict[str, Any]] | None = None  # None: never pulled, counts unknown


class ParameterCounts(msgspec.Struct, frozen=True):
    header: int = 0
    body: int = 0
    buttons: tuple[int, ...] = ()  # by button index; trailing zeros are not significant


def _placeholders(text: Any) -> int:
    return len(set(_PLACEHOLDER.findall(text))) if isinstance(text, str) else 0


def _button_parameters(button: dict[str, Any]) -> int:
    kind = str(button.get("type", "")).upper()
    if kind == "URL":
        return _placeholders(button.get("url"))
    return 1 if kind in _ONE_PARAMETER_BUTTONS else 0


def expected_counts(components: Sequence[dict[str, Any]], category: str | None) -> ParameterCounts:
    header = body = 0
    buttons: tuple[int, ...] = ()
    for component in components:
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            filled = str(component.get("format", "TEXT")).upper() in _FILLED_HEADERS
            header = 1 if filled else _placeholders(component.get("text"))
        elif kind == "BODY":
            # An authentication body is Meta's fixed text; its one parameter is the code.
            body = 1 if category == "AUTHENTICATION" else _placeholders(component.get("text"))
        elif kind == "BUTTONS":
            buttons = tuple(_button_parameters(b) for b in component.get("buttons") or [])
    return ParameterCounts(header, body, _trimmed(buttons))


def sent_counts(template: Template) -> ParameterCounts:
    header = body = 0
    by_index: dict[int, int] = {}
    for component in template.components:
        if isinstance(component, HeaderComponent):
            header += len(component.parameters)
        elif isinstance(component, BodyComponent):
            body += len(component.parameters)
        elif isinstance(component, ButtonComponent):
            # A quick reply's payload and a flow's action are button data, not placeholders.
            data = (PayloadParameter, ActionParameter)
            count = sum(not isinstance(p, data) for p in component.parameters)
            by_index[component.index] = by_index.get(component.index, 0) + count
    size = max(by_index, default=-1) + 1
    return ParameterCounts(header, body, _trimmed(tuple(by_index.get(i, 0) for i in range(size))))


def _trimmed(counts: tuple[int, ...]) -> tuple[int, ...]:
    end = len(counts)
    while end and counts[end - 1] == 0:
        end -= 1
    return counts[:end]


def refusal(template: Template, stored: StoredTemplate | None) -> str | None:
    """Why this template message must not be sent, or None."""
    name = f"template {template.name} ({template.language.code})"
    if stored is None:
        return f"{name} is not known: run `wapipe templates sync`"
    if stored.status != APPROVED:
        return f"{name} is {stored.status or 'of an unknown status'}, not {APPROVED}"
    if stored.components is None:
        return None
    expected = expected_counts(stored.components, stored.category)
    sent = sent_counts(template)
    for part in ("header", "body"):
        want, got = getattr(expected, part), getattr(sent, part)
        if want != got:
            return f"{name}: its {part} takes {want} parameters, the job gives {got}"
    for index in range(max(len(expected.buttons), len(sent.buttons))):
        want = expected.buttons[index] if index < len(expected.buttons) else 0
        got = sent.buttons[index] if index < len(sent.buttons) else 0
        if want != got:
            return f"{name}: its button {index} takes {want} parameters, the job gives {got}"
    return None
