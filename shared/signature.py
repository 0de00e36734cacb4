"""Meta's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``.

Checked over the exact bytes received (docs/cloudapi/webhooks.md), against every configured app
secret so a secret can be rotated without dropping webhooks. Pure; no I/O.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Final

HEADER: Final = "X-Hub-Signature-256"
_PREFIX: Final = "sha256="
_HEX_LENGTH: Final = 64


def sign(secret: bytes, body: bytes) -> str:
    """The header value Meta would send for ``body``."""
    return _PREFIX + hmac.digest(secret, body, "sha256").hex()


def parse(header: str | None) -> bytes | None:
    """The digest a header carries, or None when it is missing or malformed."""
    if header is None or not header.startswith(_PREFIX):
        return None
    hex_digest = header[len(_PREFIX) :]
    if len(hex_digest) != _HEX_LENGTH:
        return None
    try:
        return bytes.fromhex(hex_digest)
    except ValueError:
        return None


def is_valid(digest: bytes, body: bytes, secrets: Sequence[bytes]) -> bool:
    """True when any secret signs ``body`` to ``digest``. Every secret is tried, each compared
    in constant time, so timing tells nothing about the digest or which secret matched."""
    matches = [
        hmac.compare_digest(hmac.digest(secret, body, "sha256"), digest) for secret in secrets
    ]
    return any(matches)
