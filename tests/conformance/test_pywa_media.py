"""pywa uploads, looks up, downloads and deletes media through the sandbox; each answer parses,
and the bytes come back whole."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from pywa import WhatsApp
from pywa.errors import WhatsAppError

from tests.conformance.conftest import Served

PNG = (Path(__file__).parents[2] / "examples" / "shop.png").read_bytes()


async def test_upload_look_up_download_and_delete_parse_in_pywa(
    served: Served, pywa_client: WhatsApp, tmp_path: Path
) -> None:
    def round_trip() -> tuple[bytes, bytes, str, bool]:
        media = pywa_client.upload_media(PNG, mime_type="image/png", filename="shop.png")
        url = pywa_client.get_media_url(media.id)
        content = pywa_client.get_media_bytes(url.url)
        saved = pywa_client.download_media(url=url.url, path=tmp_path, filename="copy.png")
        deleted = pywa_client.delete_media(media.id)
        return content, Path(saved).read_bytes(), url.mime_type, deleted.success

    content, saved, mime_type, deleted = await asyncio.to_thread(round_trip)
    assert (content, saved, mime_type, deleted) == (PNG, PNG, "image/png", True)


async def test_an_upload_beyond_metas_limits_is_a_pywa_error_with_metas_code(
    pywa_client: WhatsApp,
) -> None:
    too_big = PNG + bytes(5 * 1024 * 1024)  # images: 5 MB at most
    with pytest.raises(WhatsAppError) as raised:
        await asyncio.to_thread(pywa_client.upload_media, too_big, mime_type="image/png")
    assert raised.value.code == 131053
