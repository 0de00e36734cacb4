"""A template file is checked before it is sent: every problem named by its field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wapipe.cli.templates.file import TemplateFileError, check, load

HEADER = {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"}
BODY = {"type": "BODY", "text": "Hi {{1}}, order {{2}}."}
URL = {"type": "URL", "text": "Track", "url": "https://x.test/{{1}}"}
GOOD: dict[str, Any] = {
    "name": "order_update",
    "language": "en_US",
    "category": "UTILITY",
    "components": [
        {**HEADER, "example": {"header_text": ["A-1"]}},
        {**BODY, "example": {"body_text": [["Ana", "A-1"]]}},
        {"type": "FOOTER", "text": "Thanks"},
        {
            "type": "BUTTONS",
            "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {**URL, "example": ["https://x.test/1"]},
            ],
        },
    ],
}


def with_component(index: int, **changes: Any) -> dict[str, Any]:
    components = [dict(c) for c in GOOD["components"]]
    components[index].update(changes)
    return {**GOOD, "components": components}


def test_a_good_template_has_no_problem() -> None:
    assert check(GOOD) == []


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ({**GOOD, "name": "Order"}, "name: 1 to 512 lowercase letters, digits and underscores"),
        ({**GOOD, "language": "english"}, "language: a language code such as en_US or es"),
        ({**GOOD, "category": "PROMO"}, "category: one of MARKETING, UTILITY, AUTHENTICATION"),
        (with_component(1, text="x" * 1025), "components[1].text: at most 1024 characters"),
        (with_component(0, text="{{1}} {{2}}"), "components[0].text: at most one placeholder"),
        (with_component(2, text="y" * 61), "components[2].text: at most 60 characters"),
        (
            with_component(1, example={"body_text": [["Ana"]]}),
            "components[1].example.body_text: 1 example values for 2 placeholders",
        ),
        (with_component(3, buttons=[]), "components[3].buttons: 1 to 10 buttons"),
        (
            with_component(3, buttons=[{"type": "QUICK_REPLY", "text": "z" * 26}]),
            "components[3].buttons[0].text: at most 25 characters",
        ),
        ({**GOOD, "components": [GOOD["components"][2]]}, "components: a BODY is required"),
    ],
)  # fmt: skip
def test_each_broken_rule_names_its_field(template: dict[str, Any], problem: str) -> None:
    assert any(found.startswith(problem) for found in check(template)), check(template)


def test_named_parameters_need_an_example_by_name() -> None:
    body = {"type": "BODY", "text": "Hi {{first_name}}", "example": {"body_text_named_params": []}}
    named = {**GOOD, "parameter_format": "NAMED", "components": [body]}
    assert check(named) == [
        "components[0].example.body_text_named_params: no example for first_name"
    ]


def test_a_yaml_file_is_read_and_a_bad_one_lists_every_problem(tmp_path: Path) -> None:
    good = tmp_path / "t.yml"
    good.write_text(
        "name: hello\nlanguage: es\ncategory: MARKETING\n"
        "components:\n  - {type: BODY, text: Hola}\n"
    )
    assert load(good)["name"] == "hello"
    bad = tmp_path / "t.yaml"
    bad.write_text("name: Hello\nlanguage: es\ncategory: NEWS\ncomponents: []\n")
    with pytest.raises(TemplateFileError) as raised:
        load(bad)
    assert len(raised.value.problems) == 3
    broken = tmp_path / "t.json"
    broken.write_text("{")
    with pytest.raises(TemplateFileError, match="not valid json"):
        load(broken)
