"""Meta's media limits per kind (shared/media_limits.py), and the sender refusing a file beyond
them before any upload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wapipe.shared.media_limits import KIB, MIB, check_media, is_animated_webp, kind_of
from wapipe.shared.schemas.jobs import job_decoder
from wapipe.workers.sender.send import refusal

ANIMATED_WEBP = b"RIFF\x00\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00\x02" + bytes(12)


@pytest.mark.parametrize(
    ("kind", "mime", "size", "animated", "reason"),
    [
        ("image", "image/jpeg", 5 * MIB, False, None),
        ("image", "image/png", 5 * MIB + 1, False, "size"),
        ("image", "image/gif", 10, False, "type"),
        ("audio", "audio/ogg; codecs=opus", 16 * MIB, False, None),
        ("audio", "audio/wav", 10, False, "type"),
        ("video", "video/mp4", 16 * MIB + 1, False, "size"),
        ("document", "application/pdf", 100 * MIB, False, None),
        ("document", "application/zip", 10, False, "type"),
        ("sticker", "image/webp", 100 * KIB + 1, False, "size"),
        ("sticker", "image/webp", 500 * KIB, True, None),
        ("sticker", "image/webp", 500 * KIB + 1, True, "size"),
        ("image", "image/webp", 10, False, "type"),  # a webp goes as a sticker
        (None, "video/3gpp", 16 * MIB, False, None),  # the kind from the type
        (None, "application/x-thing", 1, False, "type"),
    ],
)
def test_each_kind_takes_its_types_up_to_its_size(
    kind: str | None, mime: str, size: int, animated: bool, reason: str | None
) -> None:
    refused = check_media(kind, mime, size, animated=animated)
    assert (refused.reason if refused else None) == reason


def test_a_webp_is_a_sticker_and_its_animation_flag_is_read() -> None:
    assert kind_of("image/webp") == "sticker"
    assert is_animated_webp(ANIMATED_WEBP)
    assert not is_animated_webp(b"RIFF\x00\x00\x00\x00WEBPVP8 " + bytes(20))


def test_the_sender_refuses_a_file_beyond_its_kinds_limit_before_uploading(
    tmp_path: Path,
) -> None:
    picture = tmp_path / "big.png"
    picture.write_bytes(bytes(5 * MIB + 1))
    job = job_decoder.decode(
        json.dumps(
            {
                "kind": "send",
                "idempotency_key": "k",
                "phone_number_id": "1",
                "to": "16315551181",
                "message": {"type": "image", "image": {"file": str(picture)}},
            }
        )
    )
    stage, reason = refusal(job, tmp_path.resolve(), 0.0) or ("", "")
    assert stage == "invalid"
    assert reason == "big.png: image is 5242881 bytes; Meta takes 5242880 bytes at most"
