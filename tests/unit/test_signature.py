"""The webhook signature: Meta's header format, every secret tried, the exact bytes."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from wapipe.shared.signature import is_valid, parse, sign

BODY = b'{"object":"whatsapp_business_account","entry":[{"caption":"caf\\u00e9 \\/ x"}]}'


def test_sign_is_hex_hmac_sha256_of_the_raw_body() -> None:
    expected = hmac.new(b"secret", BODY, hashlib.sha256).hexdigest()
    assert sign(b"secret", BODY) == "sha256=" + expected


def test_either_of_two_secrets_verifies() -> None:
    secrets = (b"old", b"new")
    for secret in secrets:
        digest = parse(sign(secret, BODY))
        assert digest is not None
        assert is_valid(digest, BODY, secrets)


def test_a_changed_byte_fails() -> None:
    digest = parse(sign(b"s", BODY))
    assert digest is not None
    assert not is_valid(digest, BODY.replace(b"\\/", b"/"), (b"s",))


def test_uppercase_hex_is_the_same_digest() -> None:
    header = sign(b"s", BODY)
    assert parse("sha256=" + header[7:].upper()) == parse(header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha256=",
        "sha1=" + "0" * 40,
        "sha256=" + "0" * 63,
        "sha256=" + "g" * 64,
        "SHA256=" + "0" * 64,
        "sha256=" + "0" * 65,
    ],
)
def test_missing_or_malformed_header_parses_to_none(header: str | None) -> None:
    assert parse(header) is None
