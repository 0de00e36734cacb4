"""Media as the Cloud API keeps it (docs/cloudapi/media.md): ids that live for a while, look-ups
that hand out download URLs which expire, downloads that need the bearer token and honour ``Range``.

    POST   /{version}/{phone-number-id}/media   multipart upload -> {"id"}
    GET    /{version}/{media-id}                -> {messaging_product, url, mime_type, sha256 (hex),
                                                    file_size, id}
    DELETE /{version}/{media-id}                -> {"success": true}
    GET    /whatsapp_business/attachments/?mid=&ext=&hash=   the download URL (bearer token)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Final

from aiohttp import BodyPartReader, web

from wapipe.sandbox import errors
from wapipe.shared.media_limits import LARGEST_BYTES, check_media, is_animated_webp

UPLOADED_MEDIA_TTL_S: Final = 30 * 24 * 3600.0  # docs/cloudapi/media.md
DOWNLOAD_PATH: Final = "/whatsapp_business/attachments/"
URLS_BEFORE_PRUNING: Final = 10_000  # expired download URLs are dropped past this many
# documents, the largest kind (docs/cloudapi/media-limits.md)
LARGEST_MEDIA_BYTES: Final = LARGEST_BYTES


@dataclass
class MediaItem:
    id: str
    content: bytes
    mime_type: str
    phone_number_id: str
    created_at: float
    lifetime_s: float
    filename: str | None = None
    sha256: bytes = b""

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.content).digest()

    def alive(self, now: float) -> bool:
        return now - self.created_at < self.lifetime_s


@dataclass
class MediaStore:
    items: dict[str, MediaItem] = field(default_factory=dict)
    _urls: dict[str, tuple[str, float]] = field(default_factory=dict)  # hash -> id, expiry

    def add(self, item: MediaItem) -> MediaItem:
        self.items[item.id] = item
        return item

    def find(self, media_id: str, now: float) -> MediaItem:
        item = self.items.get(media_id)
        if item is not None and not item.alive(now):
            del self.items[media_id]  # its bytes go too
            item = None
        if item is None:
            raise errors.unknown_object(media_id)
        return item

    def delete(self, media_id: str, now: float) -> None:
        self.find(media_id, now)
        del self.items[media_id]

    def new_url(self, base: str, item: MediaItem, now: float, ttl_s: float) -> str:
        if len(self._urls) > URLS_BEFORE_PRUNING:
            self._urls = {t: kept for t, kept in self._urls.items() if kept[1] > now}
        token = secrets.token_urlsafe(12)
        self._urls[token] = (item.id, now + ttl_s)
        return f"{base}{DOWNLOAD_PATH}?mid={item.id}&ext={int(now + ttl_s)}&hash={token}"

    def by_url(self, token: str, now: float) -> MediaItem | None:
        """The item behind a download URL, while the URL lives and the item does."""
        media_id, expires_at = self._urls.get(token, ("", 0.0))
        item = self.items.get(media_id)
        if item is None or now >= expires_at or not item.alive(now):
            return None
        return item


def lookup_answer(item: MediaItem, url: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "url": url,
        "mime_type": item.mime_type,
        "sha256": item.sha256.hex(),  # hex here, base64 in webhooks (docs/cloudapi/media.md)
        "file_size": len(item.content),
        "id": item.id,
    }


async def read_upload(request: web.Request) -> tuple[bytes, str, str | None]:
    """The file of a multipart upload, its type and its name. Raises the Cloud API's errors."""
    if not request.content_type.startswith("multipart/"):
        raise errors.invalid_parameter("upload media as multipart/form-data")
    fields: dict[str, str] = {}
    content, filename, part_type = None, None, None
    async for part in await request.multipart():
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "file":
            content, filename = await part.read(), part.filename
            part_type = part.headers.get("Content-Type")
        elif part.name:
            fields[part.name] = await part.text()
    if fields.get("messaging_product") != "whatsapp":
        raise errors.missing_parameter("messaging_product must be whatsapp")
    if content is None:
        raise errors.missing_parameter("file is required")
    mime_type = fields.get("type") or part_type
    if not mime_type:
        raise errors.missing_parameter("type is required")
    _check_limits(content, mime_type)
    return content, mime_type, filename


def _check_limits(content: bytes, mime_type: str) -> None:
    """Meta's type and size per kind (shared/media_limits.py): a type no kind takes is an
    invalid parameter, a file too large a media upload error."""
    refused = check_media(None, mime_type, len(content), animated=is_animated_webp(content[:32]))
    if refused is not None and refused.reason == "type":
        raise errors.invalid_parameter(f"Param file: {refused.details}")
    if refused is not None:
        raise errors.GraphError(131053, refused.details)
