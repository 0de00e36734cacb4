"""heyoo (requests-based, pinned to Graph v14.0/v15.0, long retired) drives every call of its own
the sandbox serves, and reads the webhooks the sandbox sends with its helpers. heyoo returns the
answer's JSON rather than types, so "parses" here means: a JSON body of Meta's shape (a wamid for
a send), and each helper returns the field it promises."""

from __future__ import annotations

import asyncio
import gc
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import heyoo
import pytest

from tests.conformance.conftest import Served
from tests.helpers import wait_until
from tests.integration.sandbox_support import CUSTOMER
from tests.integration.test_sandbox_business import ORDER_UPDATE, create
from wapipe.sandbox.business import review

PNG = (Path(__file__).parents[2] / "examples" / "shop.png").read_bytes()
LINK = "https://example.com/files/"
WAMID = "wamid.HBgLMTYzMTU1NTExODEVAgARGBI"
ROWS = {"title": "S", "rows": [{"id": "a", "title": "A"}]}
SENDS: dict[str, Callable[[Any], Any]] = {
    "text": lambda h: h.send_message("hello", CUSTOMER),
    "reply": lambda h: h.reply_to_message(WAMID, CUSTOMER, "yes"),
    "reaction": lambda h: h.send_reaction("👍", WAMID, CUSTOMER),
    "image": lambda h: h.send_image(LINK + "a.png", CUSTOMER, caption="A picture"),
    "sticker": lambda h: h.send_sticker(LINK + "a.webp", CUSTOMER),
    "audio": lambda h: h.send_audio(LINK + "a.mp3", CUSTOMER),
    "video": lambda h: h.send_video(LINK + "a.mp4", CUSTOMER, caption="A film"),
    "document": lambda h: h.send_document(LINK + "a.pdf", CUSTOMER, filename="a.pdf"),
    "location": lambda h: h.send_location(38.9, -77.0, "Shop", "1 Main St", CUSTOMER),
    "contacts": lambda h: h.send_contacts(
        [{"name": {"formatted_name": "Ana Ortiz", "first_name": "Ana"}}], CUSTOMER
    ),
    "list": lambda h: h.send_button(
        {"body": "Pick", "action": {"button": "Menu", "sections": [ROWS]}}, CUSTOMER
    ),
    "reply buttons": lambda h: h.send_reply_button(
        {
            "type": "button",
            "body": {"text": "Pick"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]},
        },
        CUSTOMER,
    ),
    "custom json": lambda h: h.send_custom_json(
        {"messaging_product": "whatsapp", "type": "text", "text": {"body": "raw"}}, CUSTOMER
    ),
}


@pytest.mark.parametrize("kind", SENDS)
async def test_every_heyoo_send_gets_metas_answer(
    served: Served, heyoo_client: heyoo.WhatsApp, kind: str
) -> None:
    served.open_window()
    answer = await asyncio.to_thread(SENDS[kind], heyoo_client)
    assert answer["messages"][0]["id"].startswith("wamid.")


async def test_a_heyoo_template_send_and_read_receipt_get_metas_answers(
    served: Served, heyoo_client: heyoo.WhatsApp
) -> None:
    created = await create(served.sandbox, ORDER_UPDATE)
    review(served.sandbox.app, created["id"], "APPROVED", "NONE")
    body = [{"type": "body", "parameters": [{"type": "text", "text": v} for v in ("Ana", "A-1")]}]
    sent = await asyncio.to_thread(
        heyoo_client.send_template, "order_update", CUSTOMER, body, "en_US"
    )
    assert sent["messages"][0]["message_status"] == "accepted"
    read = await asyncio.to_thread(heyoo_client.mark_as_read, WAMID)
    assert read == {"success": True}


async def test_heyoo_uploads_looks_up_downloads_and_deletes_media(
    heyoo_client: heyoo.WhatsApp, tmp_path: Path
) -> None:
    picture = tmp_path / "shop.png"
    picture.write_bytes(PNG)

    def round_trip() -> tuple[bytes, Any]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            uploaded = heyoo_client.upload_media(str(picture))
            gc.collect()
        # heyoo opens the file it uploads and never closes it: its leak, not the answer's.
        assert {w.category for w in caught} <= {ResourceWarning}
        url = heyoo_client.query_media_url(uploaded["id"])
        saved = heyoo_client.download_media(url, "image/png", str(tmp_path / "copy"))
        return Path(saved).read_bytes(), heyoo_client.delete_media(uploaded["id"])

    content, deleted = await asyncio.to_thread(round_trip)
    assert (content, deleted) == (PNG, {"success": True})


async def test_heyoo_reads_the_sandboxs_message_and_status_webhooks(
    served: Served, heyoo_client: heyoo.WhatsApp
) -> None:
    sandbox = served.sandbox
    kinds = ("text", "location", "image", "document", "audio", "video", "interactive")
    for kind in kinds:
        answer = await sandbox.post(f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": kind})
        assert answer.ok
    assert "messages" in await asyncio.to_thread(heyoo_client.send_message, "hi", CUSTOMER)
    await wait_until(lambda: len(served.receiver.statuses()) == 3, timeout=5)
    readers = {
        "text": heyoo_client.get_message,
        "location": heyoo_client.get_location,
        "image": heyoo_client.get_image,
        "document": heyoo_client.get_document,
        "audio": heyoo_client.get_audio,
        "video": heyoo_client.get_video,
        "interactive": heyoo_client.get_interactive_response,
    }
    read: list[tuple[Any, ...]] = []
    for body in served.receiver.bodies:
        data = json.loads(body)
        assert heyoo_client.changed_field(data) == "messages"
        if heyoo_client.is_message(data):
            kind = heyoo_client.get_message_type(data)
            assert readers[kind](data)
            assert heyoo_client.get_message_id(data).startswith("wamid.")
            assert heyoo_client.get_message_timestamp(data).isdigit()
            read.append((kind, heyoo_client.get_mobile(data), heyoo_client.get_name(data)))
        else:
            assert heyoo_client.get_delivery(data) in ("sent", "delivered", "read")
    assert read == [(k, CUSTOMER, "Kerry Fisher") for k in kinds]
