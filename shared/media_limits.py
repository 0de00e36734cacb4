"""Meta's media limits per kind, as data, and the one check of a file against them. Pure: the
sandbox refuses with it, the client and the sender check before an upload
(docs/cloudapi/media-limits.md has each figure's source).

| kind     | types                                                    | largest             |
|----------|----------------------------------------------------------|---------------------|
| audio    | aac, amr, mpeg (mp3), mp4 (m4a), ogg (opus)              | 16 MB               |
| document | text, pdf, Word, Excel, PowerPoint (old and OOXML)       | 100 MB              |
| image    | jpeg, png                                                | 5 MB                |
| sticker  | webp                                                     | 100 KB, animated 500 KB |
| video    | mp4, 3gpp (H.264 video, AAC audio)                       | 16 MB               |

Meta's "MB" is 1024 x 1024 bytes and "KB" 1024 bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * 1024


@dataclass(frozen=True)
class MediaLimit:
    mime_types: frozenset[str]
    max_bytes: int
    max_animated_bytes: int | None = None  # stickers: an animated one may be larger


LIMITS: Final[dict[str, MediaLimit]] = {
    "audio": MediaLimit(
        frozenset({"audio/aac", "audio/amr", "audio/mpeg", "audio/mp4", "audio/ogg"}), 16 * MIB
    ),
    "document": MediaLimit(
        frozenset(
            {
                "text/plain",
                "application/pdf",
                "application/msword",
                "application/vnd.ms-excel",
                "application/vnd.ms-powerpoint",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.openxmlformats-officedocument.presentationml.presentation",
            }
        ),
        100 * MIB,
    ),
    "image": MediaLimit(frozenset({"image/jpeg", "image/png"}), 5 * MIB),
    "sticker": MediaLimit(frozenset({"image/webp"}), 100 * KIB, max_animated_bytes=500 * KIB),
    "video": MediaLimit(frozenset({"video/mp4", "video/3gpp"}), 16 * MIB),
}
LARGEST_BYTES: Final = max(limit.max_bytes for limit in LIMITS.values())


@dataclass(frozen=True)
class MediaRefusal:
    """Why Meta refuses the file: ``type`` (not a type of its kind) or ``size``."""

    reason: str  # "type" or "size"
    details: str


def kind_of(mime_type: str) -> str | None:
    """The kind an upload of this type is (a webp is a sticker: WhatsApp sends no webp image)."""
    base = _base(mime_type)
    return next((kind for kind, limit in LIMITS.items() if base in limit.mime_types), None)


def check_media(
    kind: str | None, mime_type: str, size_bytes: int, *, animated: bool = False
) -> MediaRefusal | None:
    """None if Meta takes a file of this type and size as ``kind`` (None: the type's kind)."""
    kind = kind or kind_of(mime_type)
    limit = LIMITS.get(kind or "")
    base = _base(mime_type)
    if kind is None or limit is None or base not in limit.mime_types:
        allowed = ", ".join(sorted(limit.mime_types if limit else _all_types()))
        return MediaRefusal("type", f"{mime_type} is not a {kind or 'media'} type ({allowed})")
    largest = limit.max_animated_bytes if animated and limit.max_animated_bytes else limit.max_bytes
    if size_bytes > largest:
        return MediaRefusal(
            "size", f"{kind} is {size_bytes} bytes; Meta takes {largest} bytes at most"
        )
    return None


def is_animated_webp(head: bytes) -> bool:
    """A WebP whose extended header (VP8X) sets the animation flag."""
    return head[:4] == b"RIFF" and head[8:16] == b"WEBPVP8X" and bool(head[20] & 0x02)


def _base(mime_type: str) -> str:
    """``audio/ogg; codecs=opus`` -> ``audio/ogg``."""
    return mime_type.split(";")[0].strip().lower()


def _all_types() -> set[str]:
    return {t for limit in LIMITS.values() for t in limit.mime_types}
