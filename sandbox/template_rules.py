"""What Meta checks of a template at creation and at an edit (docs/cloudapi/template-rules.md).
Pure: raises GraphError.

- Creation: a placeholder (``{{1}}``, ``{{name}}``) in a text header, the body or a URL button
  needs its example, and a media header an example handle; else Meta's 100 (subcode 2388043,
  "component of type BODY is missing expected field(s) (example)").
- Edit (``POST /{template-id}``): only ``components`` and ``category`` change, never the name or
  the language; only an APPROVED, REJECTED or PAUSED template; an approved one at most once a
  day and 10 times in 30 days, and never into another category. An edit sends it back to review.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Final

from wapipe.sandbox.errors import GraphError, invalid_parameter, missing_parameter

EXAMPLE_MISSING_SUBCODE: Final = 2388043
EDITABLE: Final = frozenset({"APPROVED", "REJECTED", "PAUSED"})
EDITABLE_FIELDS: Final = frozenset(
    {"components", "category", "parameter_format", "message_send_ttl_seconds"}
)
DAY_S: Final = 24 * 3600
APPROVED_EDITS: Final = ((DAY_S, 1), (30 * DAY_S, 10))  # (window, edits allowed in it)
_PLACEHOLDER: Final = re.compile(r"\{\{\s*[A-Za-z0-9_]+\s*\}\}")
_MEDIA_HEADERS: Final = frozenset({"IMAGE", "VIDEO", "DOCUMENT", "GIF"})


def check_examples(components: Sequence[Any]) -> None:
    """Every placeholder has its example (Meta refuses the template otherwise)."""
    for component in components:
        if isinstance(component, dict) and _lacks_example(component):
            kind = str(component.get("type", "")).upper()
            raise GraphError(
                100,
                f"component of type {kind} is missing expected field(s) (example)",
                subcode=EXAMPLE_MISSING_SUBCODE,
            )


def _lacks_example(component: dict[str, Any]) -> bool:
    kind = str(component.get("type", "")).upper()
    example = component.get("example") or {}
    if kind == "BODY":
        return _has_placeholder(component.get("text")) and not (
            example.get("body_text") or example.get("body_text_named_params")
        )
    if kind == "HEADER":
        if str(component.get("format", "TEXT")).upper() in _MEDIA_HEADERS:
            return not example.get("header_handle")
        return _has_placeholder(component.get("text")) and not (
            example.get("header_text") or example.get("header_text_named_params")
        )
    if kind == "BUTTONS":
        return any(
            isinstance(b, dict) and _has_placeholder(b.get("url")) and not b.get("example")
            for b in component.get("buttons") or []
        )
    return False


def _has_placeholder(text: Any) -> bool:
    return isinstance(text, str) and _PLACEHOLDER.search(text) is not None


def check_edit(
    status: str, category: str, edits_at: Sequence[float], changes: dict[str, Any], now: float
) -> None:
    """Whether Meta takes this edit of a template in ``status``, edited at ``edits_at``."""
    fixed = set(changes) - EDITABLE_FIELDS
    if fixed:
        raise invalid_parameter(
            f"{', '.join(sorted(fixed))} cannot be edited: only components and category"
        )
    if "components" not in changes and "category" not in changes:
        raise missing_parameter("give components or category to edit")
    if status not in EDITABLE:
        raise invalid_parameter(f"a template in status {status} cannot be edited")
    if status != "APPROVED":
        return
    if changes.get("category", category) != category:
        raise invalid_parameter("the category of an approved template cannot be edited")
    for window_s, allowed in APPROVED_EDITS:
        if sum(now - at < window_s for at in edits_at) >= allowed:
            days = window_s // DAY_S
            raise invalid_parameter(
                f"an approved template can be edited {allowed} time(s) in {days} day(s)"
            )
