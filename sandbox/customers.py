"""Simulated customers: the files they send and the inbound messages Meta would deliver. Pure.

- ``sample_media(kind, size)``: a small real file per media kind (PNG, Ogg Opus or MP3, MP4, PDF,
  WebP), the same bytes every call, padded to ``size`` where the format tolerates it.
- ``inbound_message(kind, ...)``: one ``value.messages[]`` object shaped as Meta shapes it
  (REFERENCE.md 4.2, 4.3); per-kind fields come from ``spec``, with defaults for what is absent.
- ``inbound_value(...)``: the ``value`` of a ``messages`` change around one such message.

Shapes follow the sample bodies in ../shared/cloudapi/webhooks/message_*.json key for key.
"""

from __future__ import annotations

import base64
import copy
import json
import struct
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

MEDIA_KINDS: Final = ("image", "audio", "video", "document", "sticker")

UNSUPPORTED_CODE: Final = 131051  # REFERENCE.md 4.3, type "unsupported"
DEFAULT_DOCUMENT_FILENAME: Final = "document.pdf"


# --- Media files (REFERENCE.md 9.2) ------------------------------------------------------------


@dataclass(frozen=True)
class MediaFile:
    content: bytes
    mime_type: str
    filename: str | None


# Comment lines to a PDF, inert bytes elsewhere; holds no 0xFF (MPEG sync) and no "OggS".
_FILLER_UNIT: Final = b"% wapipe sandbox padding\n"


def _filler(size: int) -> bytes:
    return (_FILLER_UNIT * (size // len(_FILLER_UNIT) + 1))[:size]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload)
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _png(pad: int) -> bytes:
    """One 8-bit RGB pixel (REFERENCE.md 9.2: PNG must be 8-bit RGB or RGBA).

    The pixel goes in a stored (uncompressed) zlib block, so the bytes never depend on which zlib
    Python was built with. Padding follows IEND, where decoders stop reading.
    """
    scanline = b"\x00" + bytes((37, 211, 102))  # filter type 0, then one pixel
    stored = struct.pack("<BHH", 1, len(scanline), len(scanline) ^ 0xFFFF) + scanline
    idat = b"\x78\x01" + stored + struct.pack(">I", zlib.adler32(scanline))
    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)  # 1x1, depth 8, RGB
    chunks = _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks + _filler(pad)


_OGG_SERIAL: Final = 0x77617069


def _ogg_crc(page: bytes) -> int:
    """Ogg's CRC-32 is not zlib's: polynomial 0x04C11DB7, unreflected, no initial or final XOR."""
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7 if crc & 0x80000000 else crc << 1) & 0xFFFFFFFF
    return crc


def _ogg_page(flags: int, granule: int, sequence: int, packet: bytes) -> bytes:
    lacing = bytes([255] * (len(packet) // 255) + [len(packet) % 255])
    header = b"OggS" + struct.pack("<BBqII", 0, flags, granule, _OGG_SERIAL, sequence)
    page = header + b"\0\0\0\0" + bytes([len(lacing)]) + lacing + packet
    return page[:22] + struct.pack("<I", _ogg_crc(page)) + page[26:]


def _ogg_opus(pad: int) -> bytes:
    """A voice note: Opus head, tags, one 20 ms silent frame. Padding trails the EOS page, so the
    stream stays whole; past 64 KiB it hides the last page from duration probes (mutagen)."""
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48_000, 0, 0)  # mono, 48 kHz
    vendor = b"wapipe sandbox"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    silence = b"\xf8\xff\xfe"  # one CELT frame of silence
    pages = ((0x02, 0, head), (0x00, 0, tags), (0x04, 960, silence))  # BOS, -, EOS
    return b"".join(
        _ogg_page(flags, granule, sequence, packet)
        for sequence, (flags, granule, packet) in enumerate(pages)
    ) + _filler(pad)


def _synchsafe(size: int) -> bytes:
    if size >= 1 << 28:
        raise ValueError(f"an ID3v2 tag holds less than 256 MiB, not {size} bytes")
    return bytes((size >> shift) & 0x7F for shift in (21, 14, 7, 0))


def _mp3(pad: int) -> bytes:
    """An ID3v2.3 tag (a title frame, then the padding: zeros, as ID3 wants) and four silent
    MPEG-1 Layer III frames (32 kbit/s, 44.1 kHz, mono: 104 bytes each), enough to sync on."""
    title = b"\x00wapipe sandbox"  # encoding byte 0: ISO-8859-1
    frame = b"TIT2" + struct.pack(">IH", len(title), 0) + title
    tag = b"ID3\x03\x00\x00" + _synchsafe(len(frame) + pad) + frame + bytes(pad)
    return tag + (b"\xff\xfb\x10\xc4" + bytes(104 - 4)) * 4


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def _mp4(pad: int) -> bytes:
    """An ISO BMFF file: ftyp, then an mdat that nothing references, so its payload is padding."""
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 0x200) + b"isomiso2avc1mp41")
    return ftyp + _box(b"mdat", _filler(pad))


def _pdf_comments(size: int) -> bytes:
    return _filler(size - 1) + b"\n" if size else b""


def _pdf(pad: int) -> bytes:
    """One blank page. Padding is comment lines (whitespace to a reader) after the trailer: no
    object offset moves, and startxref stays near the end where readers look for it."""
    objects = (
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 100] >>",
    )
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\n" % (len(objects) + 1)
    return bytes(out) + _pdf_comments(pad) + b"startxref\n%d\n%%%%EOF\n" % xref_at


def _riff_chunk(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)


_VP8L_1X1: Final = bytes.fromhex("2f000000 10071011 1188 88fe07")  # lossless 1x1


def _webp(chunks: bytes, pad: int) -> bytes:
    """Padding trails the RIFF extent, which decoders read up to and no further."""
    body = b"WEBP" + chunks
    return b"RIFF" + struct.pack("<I", len(body)) + body + _filler(pad)


def _webp_static(pad: int) -> bytes:
    return _webp(_riff_chunk(b"VP8L", _VP8L_1X1), pad)


def _webp_animated(pad: int) -> bytes:
    """Extended format: VP8X with the alpha and animation flags, ANIM, two 100 ms frames."""
    canvas = _riff_chunk(b"VP8X", bytes([0x12, 0, 0, 0]) + bytes(6))  # 1x1: sizes minus one
    anim = _riff_chunk(b"ANIM", b"\xff\xff\xff\xff" + struct.pack("<H", 0))  # loop forever
    frame_header = bytes(12) + (100).to_bytes(3, "little") + b"\0"
    frame = _riff_chunk(b"ANMF", frame_header + _riff_chunk(b"VP8L", _VP8L_1X1))
    return _webp(canvas + anim + frame * 2, pad)


def _media_format(
    kind: str, *, voice: bool, animated: bool
) -> tuple[Callable[[int], bytes], str, str | None]:
    audio = (_ogg_opus, "audio/ogg; codecs=opus") if voice else (_mp3, "audio/mpeg")
    formats: dict[str, tuple[Callable[[int], bytes], str, str | None]] = {
        "image": (_png, "image/png", None),
        "audio": (*audio, None),
        "video": (_mp4, "video/mp4", None),
        "document": (_pdf, "application/pdf", DEFAULT_DOCUMENT_FILENAME),
        "sticker": (_webp_animated if animated else _webp_static, "image/webp", None),
    }
    if kind not in formats:
        raise ValueError(f"no sample media of kind {kind!r}; known: {', '.join(MEDIA_KINDS)}")
    return formats[kind]


def sample_media(
    kind: str, size: int = 0, voice: bool = False, animated: bool = False
) -> MediaFile:
    """A small real file of ``kind``; padded to exactly ``size`` bytes when that is larger."""
    build, mime_type, filename = _media_format(kind, voice=voice, animated=animated)
    natural = build(0)
    content = build(size - len(natural)) if size > len(natural) else natural
    return MediaFile(content=content, mime_type=mime_type, filename=filename)


# --- Inbound messages (REFERENCE.md 4) ---------------------------------------------------------


@dataclass(frozen=True)
class MediaRef:
    """An uploaded file as a message refers to it; ``sha256`` is the raw 32-byte digest."""

    id: str
    mime_type: str
    sha256: bytes
    filename: str | None = None  # documents: the name the customer's file had


@dataclass(frozen=True)
class _Inbound:
    """What a per-kind builder gets: the kind, who sends, the caller's spec, the media if any."""

    kind: str
    sender: str
    spec: Mapping[str, Any]
    media: MediaRef | None


_Fields = dict[str, Any]  # keys to add to the message next to from, id, timestamp and type


def _present(spec: Mapping[str, Any], *keys: str) -> _Fields:
    return {key: spec[key] for key in keys if spec.get(key) is not None}


def _text(inbound: _Inbound) -> _Fields:
    return {"text": {"body": inbound.spec.get("body", "Hello!")}}


# What each media kind adds to {id, mime_type, sha256} (REFERENCE.md 4.3): a caption the customer
# may write, or a flag Meta always sends.
_CAPTIONED: Final = frozenset({"image", "video", "document"})
_FLAGS: Final = {"audio": "voice", "sticker": "animated"}


def _document_filename(inbound: _Inbound) -> str:
    from_media = inbound.media.filename if inbound.media else None
    return str(inbound.spec.get("filename") or from_media or DEFAULT_DOCUMENT_FILENAME)


def _media(inbound: _Inbound) -> _Fields:
    kind, spec = inbound.kind, inbound.spec
    if inbound.media is None:
        raise ValueError(f"a {kind} message needs media (a MediaRef)")
    media: dict[str, Any] = {
        "id": inbound.media.id,
        "mime_type": inbound.media.mime_type,
        # base64 in webhooks, hex in GET /{media-id} (REFERENCE.md 4.3)
        "sha256": base64.b64encode(inbound.media.sha256).decode(),
    } | _present(spec, *(("caption", "url") if kind in _CAPTIONED else ("url",)))
    if flag := _FLAGS.get(kind):
        media[flag] = bool(spec.get(flag, False))
    if kind == "document":
        media["filename"] = _document_filename(inbound)
    return {kind: media}


def _location(inbound: _Inbound) -> _Fields:
    spec = inbound.spec
    where = {
        "latitude": spec.get("latitude", -23.561414),
        "longitude": spec.get("longitude", -46.655881),
    }
    return {"location": where | _present(spec, "name", "address", "url")}


_DEFAULT_CARD: Final[Mapping[str, Any]] = {
    "name": {"formatted_name": "Dana Ortiz", "first_name": "Dana", "last_name": "Ortiz"},
    "phones": [{"phone": "+1 631 555 0142", "type": "CELL", "wa_id": "16315550142"}],
    "emails": [{"email": "dana@example.com", "type": "WORK"}],
    "org": {"company": "Ortiz Tiles", "title": "Owner"},
}


def _contacts(inbound: _Inbound) -> _Fields:
    return {"contacts": copy.deepcopy(list(inbound.spec.get("contacts", [_DEFAULT_CARD])))}


def _button_reply(spec: Mapping[str, Any]) -> _Fields:
    return {"id": spec.get("id", "yes"), "title": spec.get("title", "Yes")}


def _list_reply(spec: Mapping[str, Any]) -> _Fields:
    reply = {"id": spec.get("id", "row-1"), "title": spec.get("title", "First")}
    return reply | _present(spec, "description")


def _nfm_reply(spec: Mapping[str, Any]) -> _Fields:
    response = spec.get("response_json", {"flow_token": "unused"})
    if not isinstance(response, str):  # Meta sends the flow's answer as a JSON string
        response = json.dumps(response, separators=(",", ":"))
    return {
        "name": spec.get("name", "flow"),
        "body": spec.get("body", "Sent"),
        "response_json": response,
    }


_REPLIES: Final[dict[str, Callable[[Mapping[str, Any]], _Fields]]] = {
    "button_reply": _button_reply,
    "list_reply": _list_reply,
    "nfm_reply": _nfm_reply,
}


def _interactive(inbound: _Inbound) -> _Fields:
    reply = inbound.spec.get("reply", "button_reply")
    if reply not in _REPLIES:
        raise ValueError(f"no interactive reply {reply!r}; known: {', '.join(_REPLIES)}")
    return {"interactive": {"type": reply, reply: _REPLIES[reply](inbound.spec)}}


def _button(inbound: _Inbound) -> _Fields:
    text = inbound.spec.get("text", "Yes")
    # the payload falls back to the button text when none was set at send time (REFERENCE.md 4.3)
    return {"button": {"payload": inbound.spec.get("payload", text), "text": text}}


def _reaction(inbound: _Inbound) -> _Fields:
    # A removed reaction has emoji absent or "" (both seen, REFERENCE.md 4.3): keep what is asked.
    message_id = inbound.spec.get("message_id", "wamid.sandbox-unknown")
    return {"reaction": {"message_id": message_id} | _present(inbound.spec, "emoji")}


_DEFAULT_ITEM: Final[Mapping[str, Any]] = {
    "product_retailer_id": "sku-1",
    "quantity": 1,
    "item_price": 9.99,
    "currency": "USD",
}


def _order(inbound: _Inbound) -> _Fields:
    spec = inbound.spec
    items = copy.deepcopy(list(spec.get("product_items", [_DEFAULT_ITEM])))
    order = {"catalog_id": spec.get("catalog_id", "catalog-1")} | _present(spec, "text")
    return {"order": order | {"product_items": items}}


_SYSTEM_OPTIONAL: Final = (
    "new_wa_id",
    "wa_id",
    "user_id",
    "parent_user_id",
    "previous_user_id",
    "previous_parent_user_id",
    "customer",
)


def _system(inbound: _Inbound) -> _Fields:
    spec = inbound.spec
    new_number = spec.get("new_wa_id") or spec.get("wa_id") or "a new number"
    body = spec.get("body", f"User A changed from {inbound.sender} to {new_number}")
    kind = spec.get("type", "user_changed_number")
    return {"system": {"body": body} | _present(spec, *_SYSTEM_OPTIONAL) | {"type": kind}}


def _unsupported(inbound: _Inbound) -> _Fields:
    spec = inbound.spec
    error = {
        "code": UNSUPPORTED_CODE,
        "title": "Message type unknown",  # build on the code, never the title (REFERENCE.md 5.4)
        "message": spec.get("message", "Message type unknown"),
        "error_data": {"details": spec.get("details", "Message type is currently not supported.")},
    }
    shown_as = {"unsupported": {"type": spec["type"]}} if spec.get("type") else {}
    return {"errors": [error]} | shown_as


def _request_welcome(inbound: _Inbound) -> _Fields:
    return {}  # the type alone says it: the user opened the chat for the first time


_BUILDERS: Final[dict[str, Callable[[_Inbound], _Fields]]] = {
    "text": _text,
    **dict.fromkeys(MEDIA_KINDS, _media),
    "location": _location,
    "contacts": _contacts,
    "interactive": _interactive,
    "button": _button,
    "reaction": _reaction,
    "order": _order,
    "system": _system,
    "unsupported": _unsupported,
    "request_welcome": _request_welcome,
}

INBOUND_KINDS: Final[tuple[str, ...]] = tuple(_BUILDERS)


def inbound_message(
    kind: str,
    *,
    sender: str,
    wamid: str,
    timestamp: int,
    spec: Mapping[str, Any],
    media: MediaRef | None = None,
) -> dict[str, Any]:
    """One ``value.messages[]`` object; any kind's ``spec`` may add ``context`` and ``referral``."""
    build = _BUILDERS.get(kind)
    if build is None:
        raise ValueError(f"no inbound message kind {kind!r}; known: {', '.join(INBOUND_KINDS)}")
    # timestamp is a string of unix seconds in webhooks (REFERENCE.md 4.2)
    message = {"from": sender, "id": wamid, "timestamp": str(timestamp), "type": kind}
    message |= build(_Inbound(kind=kind, sender=sender, spec=spec, media=media))
    return message | copy.deepcopy(_present(spec, "context", "referral"))


def inbound_value(
    *,
    display_phone_number: str,
    phone_number_id: str,
    customer_name: str,
    wa_id: str,
    message: dict[str, Any],
) -> dict[str, Any]:
    """The ``value`` of a ``messages`` change carrying ``message`` from customer ``wa_id``."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }
    if message.get("type") != "system":  # system webhooks carry no contacts (REFERENCE.md 4.3)
        value["contacts"] = [{"profile": {"name": customer_name}, "wa_id": wa_id}]
    value["messages"] = [message]
    return value
