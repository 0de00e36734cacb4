"""Simulated customers: every inbound kind decodes as wapipe reads it and matches Meta's sample
bodies key for key; the sample media are real files of their kind, padded to exact sizes."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import struct
import zlib
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

from tests.helpers import cloudapi_dir
from wapipe.sandbox.customers import (
    INBOUND_KINDS,
    MediaRef,
    inbound_message,
    inbound_value,
)
from wapipe.sandbox.media_files import MEDIA_KINDS, MediaFile, sample_media
from wapipe.shared.schemas.webhook import Message, MessagesValue, decode_value

SENDER = "16315551181"
WAMID = "wamid.HBgLMTYzMTU1NTExODEVAgASGBQzQTg0SANDBOXMDAwMDEA"
TIMESTAMP = 1_763_990_000


def media_ref(kind: str) -> MediaRef:
    file = sample_media(kind)
    digest = hashlib.sha256(file.content).digest()
    return MediaRef(id=f"media-{kind}", mime_type=file.mime_type, sha256=digest)


def build(kind: str, spec: dict[str, Any] | None = None) -> dict[str, Any]:
    media = media_ref(kind) if kind in MEDIA_KINDS else None
    return inbound_message(
        kind, sender=SENDER, wamid=WAMID, timestamp=TIMESTAMP, spec=spec or {}, media=media
    )


def wrap(message: dict[str, Any]) -> dict[str, Any]:
    return inbound_value(
        display_phone_number="15550101234",
        phone_number_id="106540352242922",
        customer_name="Kerry Fisher",
        wa_id=SENDER,
        message=message,
    )


def decode(value: dict[str, Any]) -> MessagesValue:
    decoded = decode_value("messages", msgspec.json.encode(value))
    assert isinstance(decoded, MessagesValue)
    return decoded


def decoded_message(kind: str, spec: dict[str, Any] | None = None) -> Message:
    value = decode(wrap(build(kind, spec)))
    assert len(value.messages) == 1
    return value.messages[0]


def at(node: Any, path: str) -> Any:
    """``at(message, "order.product_items.0.quantity")``: attributes and tuple indexes."""
    for step in path.split("."):
        node = node[int(step)] if step.isdigit() else getattr(node, step)
    return node


# --- Every kind decodes as wapipe reads it -----------------------------------------------------

# kind -> (spec, {attribute path on the decoded Message: expected value})
DECODED: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "text": ({"body": "Is 1187 shipped?"}, {"text.body": "Is 1187 shipped?"}),
    "image": (
        {"caption": "receipt"},
        {"image.caption": "receipt", "image.mime_type": "image/png", "image.id": "media-image"},
    ),
    "audio": ({"voice": False}, {"audio.voice": False, "audio.mime_type": "audio/mpeg"}),
    "video": (
        {"caption": "unboxing"},
        {"video.caption": "unboxing", "video.mime_type": "video/mp4"},
    ),
    "document": (
        {"caption": "contract", "filename": "contract-2026.pdf"},
        {
            "document.caption": "contract",
            "document.filename": "contract-2026.pdf",
            "document.mime_type": "application/pdf",
        },
    ),
    "sticker": ({"animated": True}, {"sticker.animated": True, "sticker.mime_type": "image/webp"}),
    "location": (
        {"latitude": 52.52, "longitude": 13.405, "name": "Alexanderplatz"},
        {
            "location.latitude": 52.52,
            "location.longitude": 13.405,
            "location.name": "Alexanderplatz",
        },
    ),
    "contacts": ({}, {"contacts.0.name.first_name": "Dana", "contacts.0.phones.0.type": "CELL"}),
    "interactive": (
        {"reply": "list_reply", "id": "slot-0930", "title": "09:30", "description": "Tuesday"},
        {
            "interactive.type": "list_reply",
            "interactive.list_reply.id": "slot-0930",
            "interactive.list_reply.title": "09:30",
            "interactive.list_reply.description": "Tuesday",
        },
    ),
    "button": (
        {"payload": "STOP_PROMOS", "text": "Stop promotions"},
        {"button.payload": "STOP_PROMOS", "button.text": "Stop promotions"},
    ),
    "reaction": (
        {"message_id": "wamid.ours", "emoji": "\U0001f44d"},
        {"reaction.message_id": "wamid.ours", "reaction.emoji": "\U0001f44d"},
    ),
    "order": (
        {
            "catalog_id": "cat-9",
            "product_items": [
                {
                    "product_retailer_id": "sku-boot-42",
                    "quantity": 2,
                    "item_price": 89.9,
                    "currency": "USD",
                }
            ],
        },
        {
            "order.catalog_id": "cat-9",
            "order.product_items.0.product_retailer_id": "sku-boot-42",
            "order.product_items.0.quantity": 2,
            "order.product_items.0.item_price": 89.9,
        },
    ),
    "system": (
        {"new_wa_id": "16315559999"},
        {
            "system.type": "user_changed_number",
            "system.new_wa_id": "16315559999",
            "system.body": "User A changed from 16315551181 to 16315559999",
        },
    ),
    "unsupported": (
        {"type": "poll"},
        {
            "errors.0.code": 131051,
            "errors.0.title": "Message type unknown",
            "unsupported.type": "poll",
        },
    ),
    "request_welcome": ({}, {}),
}


def test_every_inbound_kind_has_a_decoding_case() -> None:
    assert set(DECODED) == set(INBOUND_KINDS)


@pytest.mark.parametrize("kind", INBOUND_KINDS)
def test_every_kind_decodes_into_a_message_of_that_type_with_its_fields(kind: str) -> None:
    spec, expected = DECODED[kind]
    message = decoded_message(kind, spec)
    assert (message.type, message.from_, message.id) == (kind, SENDER, WAMID)
    assert message.timestamp == str(TIMESTAMP)
    assert {path: at(message, path) for path in expected} == expected


@pytest.mark.parametrize("kind", INBOUND_KINDS)
def test_every_kind_builds_from_an_empty_spec(kind: str) -> None:
    message = decoded_message(kind)
    assert message.type == kind
    if kind == "unsupported":
        assert [error.code for error in message.errors] == [131051]
    elif kind != "request_welcome":
        assert getattr(message, kind)


# --- Meta's samples, key for key ---------------------------------------------------------------

ORDER_ITEMS = [
    {"product_retailer_id": "sku-boot-42", "quantity": 1, "item_price": 89.9, "currency": "USD"},
    {"product_retailer_id": "sku-sock-3", "quantity": 3, "item_price": 4.5, "currency": "USD"},
]
REACTED_TO = "wamid.HBgLMTYzMTU1NTExODEVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"

# sample file -> (kind, spec); sender, wamid, timestamp, media, context and referral come from
# the sample itself (see built_like).
SAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "message_text.json": ("text", {"body": "Hi, is my order 1187 shipped?"}),
    "message_text_reply_context.json": ("text", {"body": "yes, that one"}),
    "message_text_forwarded.json": ("text", {"body": "look at this"}),
    "message_text_product_enquiry.json": ("text", {"body": "is this in stock?"}),
    "message_text_ad_referral.json": ("text", {"body": "I want the offer"}),
    "message_image.json": ("image", {"caption": "receipt"}),
    "message_audio_voice.json": ("audio", {"voice": True}),
    "message_document.json": ("document", {"caption": "contract", "filename": "contract-2026.pdf"}),
    "message_sticker_animated.json": ("sticker", {"animated": True}),
    "message_video.json": ("video", {}),
    "message_location.json": (
        "location",
        {
            "latitude": -23.561414,
            "longitude": -46.655881,
            "name": "Av. Paulista 1578",
            "address": "Bela Vista, Sao Paulo - SP",
            "url": "https://masp.org.br",
        },
    ),
    "message_contacts.json": ("contacts", {}),  # the default card
    "message_interactive_button_reply.json": (
        "interactive",
        {"reply": "button_reply", "id": "resched-yes", "title": "Reschedule"},
    ),
    "message_interactive_list_reply.json": (
        "interactive",
        {
            "reply": "list_reply",
            "id": "slot-0930",
            "title": "09:30",
            "description": "Tuesday morning",
        },
    ),
    "message_interactive_flow_reply.json": (
        "interactive",
        {
            "reply": "nfm_reply",
            "response_json": {"flow_token": "tok-77", "size": "42", "colour": "black"},
        },
    ),
    "message_button_template_quick_reply.json": (
        "button",
        {"payload": "STOP_PROMOS", "text": "Stop promotions"},
    ),
    "message_reaction.json": ("reaction", {"message_id": REACTED_TO, "emoji": "\U0001f44d"}),
    "message_reaction_removed.json": ("reaction", {"message_id": REACTED_TO}),
    "message_order.json": (
        "order",
        {"catalog_id": "2141234567890", "text": "for delivery today", "product_items": ORDER_ITEMS},
    ),
    "message_system_changed_number.json": ("system", {"new_wa_id": "16315559999"}),
    "message_unsupported.json": ("unsupported", {}),
    "message_request_welcome.json": ("request_welcome", {}),
}


def sample_message(name: str) -> dict[str, Any]:
    body = json.loads((cloudapi_dir() / "webhooks" / name).read_bytes())
    messages: list[dict[str, Any]] = body["entry"][0]["changes"][0]["value"]["messages"]
    assert len(messages) == 1
    return messages[0]


def built_like(sample: dict[str, Any], kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Build ``kind`` from ``spec`` plus what the sample fixes: who, which message, its media."""
    shown = sample.get(kind)
    media = None
    if kind in MEDIA_KINDS and isinstance(shown, dict):
        digest = base64.b64decode(shown["sha256"])
        media = MediaRef(id=shown["id"], mime_type=shown["mime_type"], sha256=digest)
    around = {key: sample[key] for key in ("context", "referral") if key in sample}
    return inbound_message(
        kind,
        sender=sample["from"],
        wamid=sample["id"],
        timestamp=int(sample["timestamp"]),
        spec=spec | around,
        media=media,
    )


def key_shape(node: Any) -> Any:
    """The keys of every object, recursively, and the JSON type of every leaf."""
    if isinstance(node, dict):
        return {key: key_shape(value) for key, value in node.items()}
    if isinstance(node, list):
        return [key_shape(item) for item in node]
    return type(node).__name__


@pytest.mark.parametrize("name", SAMPLES)
def test_built_message_has_the_keys_of_metas_sample(name: str) -> None:
    sample = sample_message(name)
    kind, spec = SAMPLES[name]
    assert sample["type"] == kind
    assert key_shape(built_like(sample, kind, spec)) == key_shape(sample)


@pytest.mark.parametrize("name", SAMPLES)
def test_built_message_equals_metas_sample_given_its_values(name: str) -> None:
    sample = sample_message(name)
    kind, spec = SAMPLES[name]
    assert built_like(sample, kind, spec) == sample


# --- The value around a message ----------------------------------------------------------------


def test_system_message_value_carries_no_contacts() -> None:
    value = wrap(build("system"))
    assert "contacts" not in value
    assert decode(value).contacts == ()


@pytest.mark.parametrize("kind", [kind for kind in INBOUND_KINDS if kind != "system"])
def test_other_values_carry_the_senders_profile(kind: str) -> None:
    value = decode(wrap(build(kind)))
    assert [(c.wa_id, c.profile.name if c.profile else None) for c in value.contacts] == [
        (SENDER, "Kerry Fisher")
    ]
    assert value.metadata.phone_number_id == "106540352242922"


# --- Media references and the spec's extras ----------------------------------------------------


@pytest.mark.parametrize("kind", MEDIA_KINDS)
def test_media_sha256_in_the_message_is_base64_of_the_digest(kind: str) -> None:
    digest = hashlib.sha256(sample_media(kind).content).digest()
    carried = build(kind)[kind]["sha256"]
    assert carried == base64.b64encode(digest).decode()
    assert len(carried) == 44
    assert at(decoded_message(kind), f"{kind}.sha256") == carried


@pytest.mark.parametrize("kind", MEDIA_KINDS)
def test_media_kind_without_media_is_refused_naming_the_kind(kind: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{kind}\b"):
        inbound_message(kind, sender=SENDER, wamid=WAMID, timestamp=TIMESTAMP, spec={})


def test_unknown_kind_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="poll") as refused:
        inbound_message("poll", sender=SENDER, wamid=WAMID, timestamp=TIMESTAMP, spec={})
    assert all(kind in str(refused.value) for kind in INBOUND_KINDS)


def test_unknown_interactive_reply_is_refused() -> None:
    with pytest.raises(ValueError, match="carousel_reply"):
        build("interactive", {"reply": "carousel_reply"})


def test_document_filename_comes_from_spec_then_media_then_default() -> None:
    named = MediaRef(id="m1", mime_type="application/pdf", sha256=b"\0" * 32, filename="a.pdf")

    def filename(spec: dict[str, Any], media: MediaRef) -> Any:
        message = inbound_message(
            "document", sender=SENDER, wamid=WAMID, timestamp=TIMESTAMP, spec=spec, media=media
        )
        return message["document"]["filename"]

    assert filename({"filename": "b.pdf"}, named) == "b.pdf"
    assert filename({}, named) == "a.pdf"
    assert filename({}, media_ref("document")) == "document.pdf"


def test_removed_reaction_keeps_the_shape_asked_for() -> None:
    assert build("reaction", {"message_id": REACTED_TO})["reaction"] == {"message_id": REACTED_TO}
    emptied = build("reaction", {"message_id": REACTED_TO, "emoji": ""})
    assert emptied["reaction"] == {"message_id": REACTED_TO, "emoji": ""}


@pytest.mark.parametrize("kind", INBOUND_KINDS)
def test_context_and_referral_are_copied_into_any_kind(kind: str) -> None:
    context = {"from": "15550101234", "id": "wamid.quoted"}
    referral = {"source_type": "ad", "source_id": "120211234567890123"}
    message = build(kind, {"context": context, "referral": referral})
    context["id"] = "wamid.changed-afterwards"
    decoded = decode(wrap(message)).messages[0]
    assert decoded.context is not None
    assert (decoded.context.from_, decoded.context.id) == ("15550101234", "wamid.quoted")
    assert decoded.referral is not None
    assert decoded.referral.source_id == "120211234567890123"


# --- Sample media: real files --------------------------------------------------------------------


def png_chunks(content: bytes) -> list[tuple[bytes, bytes]]:
    """Chunks up to IEND, each CRC checked with zlib.crc32."""
    assert content[:8] == b"\x89PNG\r\n\x1a\n"
    chunks: list[tuple[bytes, bytes]] = []
    offset = 8
    while not chunks or chunks[-1][0] != b"IEND":
        (length,) = struct.unpack(">I", content[offset : offset + 4])
        kind, data = content[offset + 4 : offset + 8], content[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", content[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks.append((kind, data))
        offset += 12 + length
    return chunks


def check_png(content: bytes) -> None:
    chunks = png_chunks(content)
    assert [kind for kind, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[0][1])
    assert (width, height, depth, colour) == (1, 1, 8, 2)  # 8-bit RGB (docs/cloudapi/media.md)
    assert len(zlib.decompress(chunks[1][1])) == 1 + 3  # filter byte + one RGB pixel


def ogg_crc(data: bytes) -> int:
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = (crc << 1) ^ (0x04C11DB7 if crc & 0x80000000 else 0)
            crc &= 0xFFFFFFFF
    return crc


def test_ogg_crc_of_the_test_matches_the_catalogued_check_value() -> None:
    # CRC-32/CKSUM (same polynomial, final XOR) checks 0x765E7680; Ogg has no final XOR
    assert ogg_crc(b"123456789") == 0x765E7680 ^ 0xFFFFFFFF


def check_ogg_opus(content: bytes) -> None:
    offset, packets = 0, []
    while content[offset : offset + 4] == b"OggS":
        segments = content[offset + 26]
        body_at = offset + 27 + segments
        end = body_at + sum(content[offset + 27 : body_at])
        page = content[offset:end]
        (crc,) = struct.unpack("<I", page[22:26])
        assert crc == ogg_crc(page[:22] + b"\0\0\0\0" + page[26:])
        packets.append(content[body_at:end])
        offset = end
    assert [packet[:8] for packet in packets[:2]] == [b"OpusHead", b"OpusTags"]
    assert b"OggS" not in content[offset:]


def check_mp3(content: bytes) -> None:
    assert content[:3] == b"ID3"
    tag_size = sum(byte << shift for byte, shift in zip(content[6:10], (21, 14, 7, 0), strict=True))
    frame_at = 10 + tag_size
    assert content[frame_at] == 0xFF
    assert content[frame_at + 1] & 0xE0 == 0xE0  # the 11-bit MPEG frame sync


def check_mp4(content: bytes) -> None:
    assert content[4:8] == b"ftyp"
    boxes, offset = [], 0
    while offset < len(content):
        (size,) = struct.unpack(">I", content[offset : offset + 4])
        boxes.append(content[offset + 4 : offset + 8])
        offset += size
    assert offset == len(content)
    assert boxes[0] == b"ftyp"


def check_pdf(content: bytes) -> None:
    assert content.startswith(b"%PDF-")
    assert content.endswith(b"%%EOF\n")
    found = re.search(rb"startxref\n(\d+)\n%%EOF\n$", content)
    assert found is not None
    xref_at = int(found.group(1))
    assert content[xref_at : xref_at + 5] == b"xref\n"
    entries = re.findall(rb"(\d{10}) 00000 n \n", content[xref_at:])
    assert entries
    for number, offset in enumerate(entries, start=1):
        assert content[int(offset) :].startswith(b"%d 0 obj" % number)


def riff_chunks(content: bytes) -> list[bytes]:
    assert content[:4] == b"RIFF"
    assert content[8:12] == b"WEBP"
    (riff_size,) = struct.unpack("<I", content[4:8])
    assert 8 + riff_size <= len(content)
    kinds, offset = [], 12
    while offset < 8 + riff_size:
        (size,) = struct.unpack("<I", content[offset + 4 : offset + 8])
        kinds.append(content[offset : offset + 4])
        offset += 8 + size + size % 2
    assert offset == 8 + riff_size
    return kinds


def check_webp(content: bytes) -> None:
    assert riff_chunks(content) == [b"VP8L"]


def check_animated_webp(content: bytes) -> None:
    assert riff_chunks(content) == [b"VP8X", b"ANIM", b"ANMF", b"ANMF"]
    assert content[20] & 0x02  # the VP8X animation flag


# variant -> (sample_media arguments, mime type, check of the bytes)
VARIANTS: dict[str, tuple[dict[str, Any], str, Callable[[bytes], None]]] = {
    "image": ({"kind": "image"}, "image/png", check_png),
    "voice": ({"kind": "audio", "voice": True}, "audio/ogg; codecs=opus", check_ogg_opus),
    "audio": ({"kind": "audio"}, "audio/mpeg", check_mp3),
    "video": ({"kind": "video"}, "video/mp4", check_mp4),
    "document": ({"kind": "document"}, "application/pdf", check_pdf),
    "sticker": ({"kind": "sticker"}, "image/webp", check_webp),
    "animated sticker": ({"kind": "sticker", "animated": True}, "image/webp", check_animated_webp),
}


def media(variant: str, size: int = 0) -> MediaFile:
    arguments, _, _ = VARIANTS[variant]
    return sample_media(**arguments, size=size)


@pytest.mark.parametrize("variant", VARIANTS)
def test_sample_media_is_a_valid_file_of_its_kind(variant: str) -> None:
    _, mime_type, check = VARIANTS[variant]
    file = media(variant)
    assert file.mime_type == mime_type
    check(file.content)


def test_only_documents_have_a_filename() -> None:
    assert {kind: sample_media(kind).filename for kind in MEDIA_KINDS} == {
        "image": None,
        "audio": None,
        "video": None,
        "document": "document.pdf",
        "sticker": None,
    }


@pytest.mark.parametrize("variant", VARIANTS)
def test_sample_media_is_deterministic(variant: str) -> None:
    assert media(variant) == media(variant)
    assert media(variant, size=10_000) == media(variant, size=10_000)


@pytest.mark.parametrize("extra", [1, 2, 7, 8, 9, 25, 4096, 1_000_003])
@pytest.mark.parametrize("variant", VARIANTS)
def test_sample_media_pads_to_exactly_the_requested_size_and_stays_valid(
    variant: str, extra: int
) -> None:
    _, _, check = VARIANTS[variant]
    size = len(media(variant).content) + extra
    padded = media(variant, size=size).content
    assert len(padded) == size
    check(padded)


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_size_not_above_the_natural_one_gives_the_natural_file(variant: str) -> None:
    natural = media(variant)
    assert media(variant, size=len(natural.content)) == natural
    assert media(variant, size=1) == natural


def test_unknown_media_kind_is_refused_listing_the_known_ones() -> None:
    with pytest.raises(ValueError, match="gif") as refused:
        sample_media("gif")
    assert all(kind in str(refused.value) for kind in MEDIA_KINDS)
