"""pywa creates, lists, reads, edits and deletes templates through the sandbox; every answer
parses in pywa (4.5 failed on the list and the read while the sandbox's template node lacked
Meta's fields: the node is now the one shared/cloudapi/nodes.py declares)."""

from __future__ import annotations

import asyncio

import pytest
from pywa import WhatsApp
from pywa.types import templates as tpl

from tests.conformance.conftest import Served
from wapipe.sandbox.business import review
from wapipe.sandbox.keys import WORLD

ORDER = tpl.Template(
    name="order_update",
    language=tpl.TemplateLanguage.ENGLISH_US,
    category=tpl.TemplateCategory.UTILITY,
    components=[
        tpl.HeaderText("Order {{1}}", "A-1"),
        tpl.BodyText("Hi {{1}}, order {{2}} is on its way.", "Ana", "A-1"),
        tpl.FooterText(text="Shop"),
        tpl.Buttons(
            buttons=[
                tpl.URLButton(
                    text="Track",
                    url="https://shop.example/t/{{1}}",
                    example="https://shop.example/t/A-1",
                ),
                tpl.QuickReplyButton(text="Stop"),
            ]
        ),
    ],
)


async def test_create_list_read_edit_and_delete_parse_in_pywa(
    served: Served, pywa_client: WhatsApp
) -> None:
    created = await asyncio.to_thread(pywa_client.create_template, ORDER)
    assert created.status == tpl.TemplateStatus.PENDING
    review(served.sandbox.app, created.id, "APPROVED", "NONE")

    listed = await asyncio.to_thread(lambda: list(pywa_client.get_templates()))
    read = await asyncio.to_thread(pywa_client.get_template, created.id)
    assert [t.id for t in listed] == [created.id]
    assert read.status == tpl.TemplateStatus.APPROVED
    assert read.quality_score is not None
    assert read.quality_score.date is not None  # Meta's score comes with its date
    assert read.parameter_format == tpl.ParamFormat.POSITIONAL
    assert len(read.components) == 4  # every component read back in pywa's own types

    edited = await asyncio.to_thread(
        pywa_client.update_template,
        created.id,
        new_components=[tpl.BodyText("Hello {{1}}, order {{2}} left.", "Ana", "A-1")],
    )
    assert edited.success
    assert served.sandbox.app[WORLD].template_records[created.id].status == "PENDING"

    deleted = await asyncio.to_thread(
        pywa_client.delete_template, ORDER.name, template_id=created.id
    )
    assert deleted.success
    assert served.sandbox.app[WORLD].template_records == {}


def test_pywa_refuses_a_placeholder_without_its_example_as_meta_does() -> None:
    """pywa and Meta agree: a placeholder needs its example. pywa refuses before sending; the
    sandbox refuses the same payload with Meta's 100/2388043
    (tests/integration/test_sandbox_template_rules.py)."""
    with pytest.raises(ValueError, match="no examples were provided"):
        tpl.BodyText("Hi {{1}}")
