"""One send job of every kind, through ``api_message`` and the Cloud API client, to the sandbox,
which checks each body as the Cloud API does: each comes back with a wamid."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sandbox_support import (
    CUSTOMER,
    GRAPH,
    TOKEN,
    Receiver,
    SandboxClient,
    open_window,
    phone_number_id,
    start_sandbox,
)
from tests.send_examples import LINK, MEDIA_KINDS, ORDER_TEMPLATE, every_kind, media_message
from wapipe.sandbox.keys import WORLD
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.schemas.jobs import SendJob, api_message, job_decoder, local_file, message_type
from wapipe.shared.settings import Settings

AUTH = {"Authorization": f"Bearer {TOKEN}"}
FILES = {
    "image": ("shop.jpg", b"\xff\xd8\xff\xe0" + bytes(2000)),
    "audio": ("note.ogg", b"OggS" + bytes(2000)),
    "video": ("how.mp4", b"\x00\x00\x00\x18ftypmp42" + bytes(2000)),
    "document": ("prices.pdf", b"%PDF-1.4 " + bytes(2000)),
    "sticker": ("smile.webp", b"RIFF\x00\x00\x00\x00WEBP" + bytes(2000)),
}
KINDS = [name for name in every_kind({"link": LINK}, "") if name not in MEDIA_KINDS] + [
    f"{kind}-by-{source}" for kind in MEDIA_KINDS for source in ("id", "link", "file")
]


@pytest.fixture
async def sandbox_api(
    receiver: tuple[Receiver, str],
) -> AsyncIterator[tuple[SandboxClient, CloudApi]]:
    # Every kind goes to one customer: room for the burst of them under the pair rate.
    sandbox = await start_sandbox(receiver[1], pair_burst=100)
    open_window(sandbox)
    settings = Settings(
        graph_url=str(sandbox.make_url("")).rstrip("/"), access_token=TOKEN, graph_retries=0
    )
    async with CloudApi(GraphConfig.from_settings(settings)) as api:
        yield sandbox, api
    await sandbox.close()


async def approve(sandbox: SandboxClient, template: dict[str, Any]) -> None:
    waba_id = next(iter(sandbox.app[WORLD].businesses.values())).waba_id
    created = await sandbox.post(
        f"{GRAPH}/{waba_id}/message_templates", json=template, headers=AUTH
    )
    assert created.status == 200, await created.text()
    template_id = (await created.json())["id"]
    review = await sandbox.post(
        f"/_sandbox/templates/{template_id}/review", json={"status": "APPROVED"}
    )
    assert review.status == 200


def job_of(message: dict[str, Any], number: str) -> SendJob:
    """The job as a publisher would send it: JSON, decoded by the sender's decoder."""
    body = {
        "kind": "send",
        "idempotency_key": "every-kind",
        "phone_number_id": number,
        "to": CUSTOMER,
        "message": message,
        "callback_data": "job:every-kind",
    }
    job = job_decoder.decode(json.dumps(body))
    assert isinstance(job, SendJob)
    return job


async def message_for(name: str, api: CloudApi, number: str, tmp_path: Path) -> dict[str, Any]:
    if "-by-" not in name:
        first = await api.send_message(
            number, {"to": CUSTOMER, "type": "text", "text": {"body": "hi"}}
        )
        return every_kind({"link": LINK}, reaction_to=first.wamid)[name]
    kind, source = name.split("-by-")
    file_name, content = FILES[kind]
    if source == "link":
        return media_message(kind, {"link": f"{LINK}/{file_name}"})
    path = tmp_path / file_name
    path.write_bytes(content)
    if source == "file":
        return media_message(kind, {"file": str(path)})
    media_id = await api.upload_media(number, content, _mime_type(kind), file_name)
    return media_message(kind, {"id": media_id})


def _mime_type(kind: str) -> str:
    return {
        "image": "image/jpeg",
        "audio": "audio/ogg",
        "video": "video/mp4",
        "document": "application/pdf",
        "sticker": "image/webp",
    }[kind]


@pytest.mark.parametrize("name", KINDS)
async def test_every_kind_is_accepted_by_the_sandbox_with_a_wamid(
    name: str, sandbox_api: tuple[SandboxClient, CloudApi], tmp_path: Path
) -> None:
    sandbox, api = sandbox_api
    number = phone_number_id(sandbox)
    if name == "template":
        await approve(sandbox, ORDER_TEMPLATE)
    job = job_of(await message_for(name, api, number, tmp_path), number)
    media_id = None
    if (upload := local_file(job)) is not None:
        media_id = await api.upload_media(number, upload.path, upload.mime_type, upload.path.name)
        assert sandbox.app[WORLD].media.items[media_id].content == upload.path.read_bytes()
    body = {**api_message(job, media_id=media_id), "biz_opaque_callback_data": job.callback_data}
    sent = await api.send_message(number, body)
    assert sent.wamid.startswith("wamid.")
    stored = sandbox.app[WORLD].sent[sent.wamid]
    assert (stored.type, stored.biz_opaque_callback_data) == (
        message_type(job.message),
        "job:every-kind",
    )
