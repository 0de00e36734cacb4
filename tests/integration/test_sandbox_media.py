"""The sandbox's media endpoints: upload, look-up, expiring download URLs, Range, delete."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from yarl import URL

from tests.integration.sandbox_support import (
    GRAPH,
    TOKEN,
    SandboxClient,
    phone_number_id,
    response_sample,
    same_keys,
    start_sandbox,
)

AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONTENT = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
async def sandbox() -> AsyncIterator[SandboxClient]:
    client = await start_sandbox("http://127.0.0.1:9/webhook", media_url_ttl_s=300.0)
    yield client
    await client.close()


async def upload(client: SandboxClient, content: bytes = CONTENT, mime: str = "image/png") -> str:
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", mime)
    form.add_field("file", content, filename="picture.png", content_type=mime)
    response = await client.post(
        f"{GRAPH}/{phone_number_id(client)}/media", data=form, headers=AUTH
    )
    assert response.status == 200
    body = await response.json()
    assert same_keys(body, response_sample("media_upload_ok.json"))
    media_id: str = body["id"]
    return media_id


async def look_up(client: SandboxClient, media_id: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(f"{GRAPH}/{media_id}", headers=AUTH)
    return response.status, await response.json()


def local(url: object) -> str:
    """The path and query of a download URL, to fetch through the test client."""
    parsed = URL(str(url))
    return str(parsed.relative())


async def test_upload_then_look_up_gives_url_type_hex_sha256_and_size(
    sandbox: SandboxClient,
) -> None:
    media_id = await upload(sandbox)
    status, body = await look_up(sandbox, media_id)
    assert status == 200
    assert same_keys(body, response_sample("media_lookup_ok.json"))
    assert body["sha256"] == hashlib.sha256(CONTENT).hexdigest()
    assert (body["mime_type"], body["file_size"], body["id"]) == (
        "image/png",
        len(CONTENT),
        media_id,
    )
    download = await sandbox.get(local(body["url"]), headers=AUTH)
    assert download.status == 200
    assert download.content_type == "image/png"
    assert await download.read() == CONTENT


async def test_download_needs_the_bearer_token(sandbox: SandboxClient) -> None:
    _, body = await look_up(sandbox, await upload(sandbox))
    response = await sandbox.get(local(body["url"]))
    assert response.status == 401
    assert (await response.json())["error"]["code"] == 190


async def test_download_honours_range(sandbox: SandboxClient) -> None:
    _, body = await look_up(sandbox, await upload(sandbox))
    response = await sandbox.get(local(body["url"]), headers={**AUTH, "Range": "bytes=100-199"})
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(CONTENT)}"
    assert await response.read() == CONTENT[100:200]
    beyond = await sandbox.get(
        local(body["url"]), headers={**AUTH, "Range": f"bytes={len(CONTENT)}-"}
    )
    assert beyond.status == 416
    nothing = await sandbox.get(local(body["url"]), headers={**AUTH, "Range": "bytes=-0"})
    assert nothing.status == 416
    for ignored in ("bytes=0-1,5-9", "pages=1-2"):  # several ranges, or nonsense: the whole file
        whole = await sandbox.get(local(body["url"]), headers={**AUTH, "Range": ignored})
        assert (whole.status, len(await whole.read())) == (200, len(CONTENT))


async def test_download_url_expires_and_a_new_look_up_gives_a_fresh_one(
    sandbox: SandboxClient,
) -> None:
    media_id = await upload(sandbox)
    _, first = await look_up(sandbox, media_id)
    await sandbox.post("/_sandbox/clock", json={"advance_s": 301})
    assert (await sandbox.get(local(first["url"]), headers=AUTH)).status == 404
    _, fresh = await look_up(sandbox, media_id)
    assert fresh["url"] != first["url"]
    assert await (await sandbox.get(local(fresh["url"]), headers=AUTH)).read() == CONTENT


async def test_deleted_media_no_longer_resolves(sandbox: SandboxClient) -> None:
    media_id = await upload(sandbox)
    response = await sandbox.delete(f"{GRAPH}/{media_id}", headers=AUTH)
    assert await response.json() == {"success": True}
    status, body = await look_up(sandbox, media_id)
    assert status == 400
    assert body["error"]["code"] == 100


async def test_upload_without_a_file_is_refused(sandbox: SandboxClient) -> None:
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", "image/png")
    response = await sandbox.post(
        f"{GRAPH}/{phone_number_id(sandbox)}/media", data=form, headers=AUTH
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == 131008


@pytest.mark.parametrize(
    ("content", "mime", "code"),
    [
        (bytes(5 * 1024 * 1024 + 1), "image/png", 131053),  # images: 5 MB
        (bytes(100 * 1024 + 1), "image/webp", 131053),  # a static sticker: 100 KB
        (b"GIF89a", "image/gif", 100),  # no kind takes it
    ],
)
async def test_an_upload_beyond_its_kinds_limits_is_refused_with_metas_code(
    sandbox: SandboxClient, content: bytes, mime: str, code: int
) -> None:
    form = aiohttp.FormData()
    form.add_field("messaging_product", "whatsapp")
    form.add_field("type", mime)
    form.add_field("file", io.BytesIO(content), filename="file", content_type=mime)
    response = await sandbox.post(
        f"{GRAPH}/{phone_number_id(sandbox)}/media", data=form, headers=AUTH
    )
    assert response.status == 400
    assert (await response.json())["error"]["code"] == code
