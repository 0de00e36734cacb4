"""A template to create, read from a JSON or YAML file and checked before it is sent: pure.

The checks are Meta's documented limits (docs/cloudapi/templates.md and Meta's template guidelines):
a name of lowercase letters, digits and underscores (<= 512), a language code, a category, one
body (<= 1024 characters) and at most one header, footer and buttons component; a text header
<= 60 characters with at most one placeholder; a footer <= 60; 1 to 10 buttons, their labels
<= 25; example values for every placeholder. Every problem is reported, each naming its field:

    components[1].example.body_text: 2 example values for 3 placeholders
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import msgspec
import yaml

NAME: Final = re.compile(r"^[a-z0-9_]{1,512}$")
LANGUAGE: Final = re.compile(r"^[a-z]{2,3}(_[A-Za-z]{2,4})?$")
CATEGORIES: Final = ("MARKETING", "UTILITY", "AUTHENTICATION")
PARAMETER_FORMATS: Final = ("POSITIONAL", "NAMED")
HEADER_FORMATS: Final = ("TEXT", "IMAGE", "VIDEO", "GIF", "DOCUMENT", "LOCATION", "PRODUCT")
BUTTON_TYPES: Final = frozenset(
    {"QUICK_REPLY", "URL", "PHONE_NUMBER", "COPY_CODE", "OTP", "FLOW", "CATALOG", "MPM",
     "SPM", "VOICE_CALL", "APP"}
)  # fmt: skip
BODY_MAX: Final = 1024
HEADER_MAX: Final = 60
FOOTER_MAX: Final = 60
BUTTON_TEXT_MAX: Final = 25
BUTTONS_MAX: Final = 10
PHONE_MAX: Final = 20
_PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class TemplateFileError(Exception):
    """The file cannot be read, or the template in it breaks Meta's rules (each in ``problems``)."""

    def __init__(self, path: str, problems: list[str]) -> None:
        super().__init__(f"{path}: " + "; ".join(problems))
        self.problems = problems


def load(path: Path) -> dict[str, Any]:
    """The template in a ``.json``, ``.yaml`` or ``.yml`` file, checked."""
    loaded = _read(path)
    problems = check(loaded)
    if problems:
        raise TemplateFileError(str(path), problems)
    return loaded


EDITABLE: Final = ("components", "category", "parameter_format")


def load_edit(path: Path) -> dict[str, Any]:
    """An edit of a template: its new ``components`` and/or ``category`` (all Meta lets change,
    docs/cloudapi/template-rules.md), checked as a template would be."""
    loaded = _read(path)
    fixed = sorted(set(loaded) - set(EDITABLE))
    if fixed or not loaded:
        return _refused(path, f"an edit gives only {', '.join(EDITABLE)}", fixed)
    whole = {"name": "edited", "language": "en_US", "category": "UTILITY"} | loaded
    if "components" not in loaded:
        whole["components"] = [{"type": "BODY", "text": "unchanged"}]
    problems = check(whole)
    if problems:
        raise TemplateFileError(str(path), problems)
    return loaded


def _refused(path: Path, rule: str, fixed: list[str]) -> dict[str, Any]:
    shown = f" ({', '.join(fixed)} cannot change)" if fixed else ""
    raise TemplateFileError(str(path), [rule + shown])


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in (".yaml", ".yml"):
            loaded = yaml.safe_load(text)
        else:
            loaded = msgspec.json.decode(text)
    except OSError as exc:
        raise TemplateFileError(str(path), [f"cannot read it: {exc.strerror}"]) from None
    except (yaml.YAMLError, msgspec.DecodeError) as exc:
        raise TemplateFileError(
            str(path), [f"not valid {path.suffix[1:] or 'JSON'}: {exc}"]
        ) from None
    if not isinstance(loaded, dict):
        raise TemplateFileError(str(path), ["the file must hold one object (the template)"])
    return loaded


def check(template: dict[str, Any]) -> list[str]:
    """Every problem of the template, each naming its field; empty if it may be sent."""
    problems = _top(template)
    components = template.get("components")
    if not isinstance(components, list) or not components:
        return [*problems, "components: a list with at least a BODY"]
    kinds = [str(c.get("type", "")).upper() if isinstance(c, dict) else "" for c in components]
    for kind in ("HEADER", "BODY", "FOOTER", "BUTTONS"):
        if kinds.count(kind) > 1:
            problems.append(f"components: at most one {kind}")
    if "BODY" not in kinds:
        problems.append("components: a BODY is required")
    named = template.get("parameter_format") == "NAMED"
    for i, component in enumerate(components):
        problems += _component(component, f"components[{i}]", named)
    return problems


def _top(template: dict[str, Any]) -> list[str]:
    problems = []
    if not isinstance(template.get("name"), str) or not NAME.match(template["name"]):
        problems.append("name: 1 to 512 lowercase letters, digits and underscores")
    if not isinstance(template.get("language"), str) or not LANGUAGE.match(template["language"]):
        problems.append("language: a language code such as en_US or es")
    if template.get("category") not in CATEGORIES:
        problems.append(f"category: one of {', '.join(CATEGORIES)}")
    if template.get("parameter_format", "POSITIONAL") not in PARAMETER_FORMATS:
        problems.append(f"parameter_format: one of {', '.join(PARAMETER_FORMATS)}")
    return problems


def _component(component: Any, path: str, named: bool) -> list[str]:
    if not isinstance(component, dict):
        return [f"{path}: an object"]
    kind = str(component.get("type", "")).upper()
    if kind == "BODY":
        return _text(component, path, BODY_MAX, required=True) + _examples(
            component, path, "body", named
        )
    if kind == "HEADER":
        return _header(component, path, named)
    if kind == "FOOTER":
        return _text(component, path, FOOTER_MAX, required=True)
    if kind == "BUTTONS":
        return _buttons(component, path)
    return [f"{path}.type: one of HEADER, BODY, FOOTER, BUTTONS"]


def _text(component: dict[str, Any], path: str, most: int, *, required: bool) -> list[str]:
    text = component.get("text")
    if text is None and not required:
        return []
    if not isinstance(text, str) or not text:
        return [f"{path}.text: required"]
    if len(text) > most:
        return [f"{path}.text: at most {most} characters (it has {len(text)})"]
    return []


def _placeholders(text: Any) -> list[str]:
    found = _PLACEHOLDER.findall(text) if isinstance(text, str) else []
    return list(dict.fromkeys(found))


def _examples(component: dict[str, Any], path: str, where: str, named: bool) -> list[str]:
    wanted = _placeholders(component.get("text"))
    if not wanted:
        return []
    example = component.get("example")
    example = example if isinstance(example, dict) else {}
    if named:
        key = f"{where}_text_named_params"
        given = example.get(key)
        names = {p.get("param_name") for p in given or [] if isinstance(p, dict)}
        missing = [name for name in wanted if name not in names]
        return [f"{path}.example.{key}: no example for {', '.join(missing)}"] if missing else []
    key = f"{where}_text"
    given = example.get(key)
    values = given[0] if where == "body" and isinstance(given, list) and given else given
    count = len(values) if isinstance(values, list) else 0
    if count != len(wanted):
        return [f"{path}.example.{key}: {count} example values for {len(wanted)} placeholders"]
    return []


def _header(component: dict[str, Any], path: str, named: bool) -> list[str]:
    fmt = str(component.get("format", "")).upper()
    if fmt not in HEADER_FORMATS:
        return [f"{path}.format: one of {', '.join(HEADER_FORMATS)}"]
    if fmt != "TEXT":
        return []
    problems = _text(component, path, HEADER_MAX, required=True)
    if len(_placeholders(component.get("text"))) > 1:
        problems.append(f"{path}.text: at most one placeholder in a header")
    return problems + _examples(component, path, "header", named)


def _buttons(component: dict[str, Any], path: str) -> list[str]:
    buttons = component.get("buttons")
    if not isinstance(buttons, list) or not 1 <= len(buttons) <= BUTTONS_MAX:
        return [f"{path}.buttons: 1 to {BUTTONS_MAX} buttons"]
    problems = []
    for j, button in enumerate(buttons):
        where = f"{path}.buttons[{j}]"
        kind = str(button.get("type", "")).upper() if isinstance(button, dict) else ""
        if kind not in BUTTON_TYPES:
            problems.append(f"{where}.type: one of {', '.join(sorted(BUTTON_TYPES))}")
            continue
        if kind in ("QUICK_REPLY", "URL", "PHONE_NUMBER"):
            problems += _text(button, where, BUTTON_TEXT_MAX, required=True)
        if kind == "URL":
            problems += _url(button, where)
        if (
            kind == "PHONE_NUMBER"
            and not 1 <= len(str(button.get("phone_number", ""))) <= PHONE_MAX
        ):
            problems.append(f"{where}.phone_number: 1 to {PHONE_MAX} characters")
    return problems


def _url(button: dict[str, Any], where: str) -> list[str]:
    url = button.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return [f"{where}.url: an http(s) URL"]
    if _placeholders(url) and not button.get("example"):
        return [f"{where}.example: an example URL for its placeholder"]
    return []
