"""pywa sends every kind of message through the sandbox, and every answer parses in pywa (a
parse error raises; a warning fails the test: pytest runs with warnings as errors)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pywa import WhatsApp
from pywa import types as t
from pywa.types import templates as tpl
from pywa.types.others import SuccessResult

from tests.conformance.conftest import Served
from tests.helpers import wait_until
from tests.integration.sandbox_support import CUSTOMER
from tests.integration.test_sandbox_business import ORDER_UPDATE, create
from wapipe.sandbox.business import review

TO = CUSTOMER
PNG = (Path(__file__).parents[2] / "examples" / "shop.png").read_bytes()
LINK = "https://example.com/files/"
CONTACT = t.Contact(
    name=t.Contact.Name(formatted_name="Ana Ortiz", first_name="Ana"),
    phones=[t.Contact.Phone(phone="+16315551181")],
)

SENDS: dict[str, Callable[[WhatsApp], Any]] = {
    "text": lambda wa: wa.send_message(TO, "hello", preview_url=True),
    "reply buttons": lambda wa: wa.send_message(
        TO, "Pick one", header="Order", footer="Shop", buttons=[t.Button("Yes", "y")]
    ),
    "list": lambda wa: wa.send_message(
        TO, "Pick", buttons=t.SectionList("Menu", [t.Section("S", [t.SectionRow("A", "a")])])
    ),
    "cta url": lambda wa: wa.send_message(
        TO, "Track", buttons=t.URLButton("Open", "https://example.com/t")
    ),
    "flow": lambda wa: wa.send_message(
        TO, "Book", buttons=t.FlowButton("Start", flow_id="1234", flow_token="tok")
    ),
    "image link": lambda wa: wa.send_image(TO, LINK + "a.png", caption="A picture"),
    "image bytes (uploaded first)": lambda wa: wa.send_image(TO, PNG, mime_type="image/png"),
    "video": lambda wa: wa.send_video(TO, LINK + "a.mp4", caption="A film"),
    "document": lambda wa: wa.send_document(TO, LINK + "a.pdf", filename="a.pdf"),
    "audio": lambda wa: wa.send_audio(TO, LINK + "a.mp3"),
    "voice": lambda wa: wa.send_voice(TO, LINK + "a.ogg"),
    "sticker": lambda wa: wa.send_sticker(TO, LINK + "a.webp"),
    "reaction": lambda wa: wa.send_reaction(TO, "👍", "wamid.HBgLMTYzMTU1NTExODEVAgARGBI"),
    "reaction removed": lambda wa: wa.remove_reaction(TO, "wamid.HBgLMTYzMTU1NTExODEVAgARGBI"),
    "location": lambda wa: wa.send_location(TO, 38.9, -77.0, "Shop", "1 Main St"),
    "location request": lambda wa: wa.request_location(TO, "Where are you?"),
    "contact": lambda wa: wa.send_contact(TO, CONTACT),
    "catalog": lambda wa: wa.send_catalog(TO, "Our catalog"),
    "product": lambda wa: wa.send_product(TO, "catalog-1", "sku-1", body="This one"),
    "products": lambda wa: wa.send_products(
        TO, "catalog-1", [t.ProductsSection("Shoes", ["sku-1"])], "Shoes", "Pick"
    ),
    "mark as read": lambda wa: wa.mark_message_as_read("wamid.HBgLMTYzMTU1NTExODEVAgARGBI"),
    "typing indicator": lambda wa: wa.indicate_typing("wamid.HBgLMTYzMTU1NTExODEVAgARGBI"),
}


@pytest.mark.parametrize("kind", SENDS)
async def test_every_send_answer_parses_in_pywa(
    served: Served, pywa_client: WhatsApp, kind: str
) -> None:
    served.open_window()
    answer = await asyncio.to_thread(SENDS[kind], pywa_client)
    if isinstance(answer, SuccessResult):  # read receipt, typing indicator
        assert answer.success
    else:
        assert answer.id.startswith("wamid.")
        assert answer.chat.id == TO


async def test_a_template_send_through_the_api_and_mm_lite_parses_in_pywa(
    served: Served, pywa_client: WhatsApp
) -> None:
    created = await create(served.sandbox, {**ORDER_UPDATE, "category": "MARKETING"})
    review(served.sandbox.app, created["id"], "APPROVED", "NONE")
    body = {"type": "body", "parameters": [{"type": "text", "text": v} for v in ("Ana", "A-1")]}
    for lite in (False, True):
        answer = await asyncio.to_thread(
            functools.partial(
                pywa_client.send_template,
                TO,
                "order_update",
                tpl.TemplateLanguage.ENGLISH_US,
                [body],
                use_mm_lite_api=lite,
            )
        )
        assert answer.id.startswith("wamid.")
    prices = {"marketing", "marketing_lite"}
    await wait_until(
        lambda: (
            prices
            <= {raw.get("pricing", {}).get("category") for _, _, raw in served.receiver.statuses()}
        ),
        timeout=5,
    )
