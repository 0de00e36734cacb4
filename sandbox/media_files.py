"""Small real files of each media kind a customer can send (docs/cloudapi/media.md): PNG, Ogg Opus
or MP3, MP4, PDF, WebP; the same bytes every call, padded to a size where the format tolerates it.
Pure."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

MEDIA_KINDS: Final = ("image", "audio", "video", "document", "sticker")
DEFAULT_DOCUMENT_FILENAME: Final = "document.pdf"


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
    """One 8-bit RGB pixel (docs/cloudapi/media.md: PNG must be 8-bit RGB or RGBA).

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
