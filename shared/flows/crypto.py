"""The Flows endpoint's encryption (docs/cloudapi/flows.md, "Encryption"), with the
``cryptography`` package; nothing here is hand-made cryptography.

    Meta -> endpoint   {"encrypted_aes_key", "initial_vector", "encrypted_flow_data"} (base64)
                       the AES key wrapped with RSA-OAEP (SHA-256, MGF1 SHA-256) to our public key;
                       the body AES-GCM under that key and IV, its 16-byte tag at the end
    endpoint -> Meta   base64 of AES-GCM(same key, the IV with every bit flipped), tag appended

Both sides are here: the endpoint's (``decrypt_request``, ``encrypt_response``) and Meta's
(``encrypt_request``, ``decrypt_response``), which the sandbox plays and the tests use. Pure: no
I/O, no clock.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import msgspec
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

TAG_BYTES: Final = 16
AES_KEY_BYTES: Final = 16  # Meta sends a 128-bit key; any AES size is accepted
IV_BYTES: Final = 16

OAEP: Final = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None
)


class EncryptedRequest(msgspec.Struct, frozen=True):
    """The body Meta posts to the endpoint (unknown fields are ignored)."""

    encrypted_flow_data: str
    encrypted_aes_key: str
    initial_vector: str


envelope_decoder: Final = msgspec.json.Decoder(EncryptedRequest)
envelope_encoder: Final = msgspec.json.Encoder()


class DecryptionFailed(Exception):
    """The request cannot be read with any of our keys: answered 421, so the client fetches the
    public key again and retries. Its message never carries request content."""


@dataclass(frozen=True, repr=False)
class Session:
    """What one request's answer is encrypted with (never logged: ``repr`` shows nothing)."""

    aes_key: bytes
    iv: bytes

    def __repr__(self) -> str:
        return "Session(***)"


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecryptionFailed(f"{what} is not base64") from None


def decrypt_request(
    envelope: EncryptedRequest, keys: Sequence[RSAPrivateKey]
) -> tuple[bytes, Session]:
    """The request's clear bytes and its session. Each key is tried in turn (a rotation holds
    the old and the new); ``DecryptionFailed`` when none unwraps the AES key or the body's tag
    does not check."""
    wrapped = _b64(envelope.encrypted_aes_key, "encrypted_aes_key")
    iv = _b64(envelope.initial_vector, "initial_vector")
    sealed = _b64(envelope.encrypted_flow_data, "encrypted_flow_data")
    if len(sealed) < TAG_BYTES or not iv:
        raise DecryptionFailed("encrypted_flow_data or initial_vector too short")
    aes_key = _unwrap(wrapped, keys)
    try:
        clear = AESGCM(aes_key).decrypt(iv, sealed, None)
    except (InvalidTag, ValueError):
        raise DecryptionFailed("the body does not authenticate under its key") from None
    return clear, Session(aes_key, iv)


def _unwrap(wrapped: bytes, keys: Sequence[RSAPrivateKey]) -> bytes:
    for key in keys:
        try:
            aes_key = key.decrypt(wrapped, OAEP)
        except ValueError:
            continue
        if len(aes_key) in (16, 24, 32):
            return aes_key
    raise DecryptionFailed(f"no key of {len(keys)} unwraps the AES key")


def flip(iv: bytes) -> bytes:
    """The response's IV: every bit of the request's inverted."""
    return bytes(byte ^ 0xFF for byte in iv)


def encrypt_response(clear: bytes, session: Session) -> str:
    """The answer's body: base64 text of the sealed ``clear`` (tag appended)."""
    sealed = AESGCM(session.aes_key).encrypt(flip(session.iv), clear, None)
    return base64.b64encode(sealed).decode("ascii")


# --- Meta's side: what the sandbox and the tests play ------------------------------------------


def encrypt_request(clear: bytes, public_key: RSAPublicKey) -> tuple[EncryptedRequest, Session]:
    """What the WhatsApp client sends: a fresh AES key and IV for each request."""
    session = Session(AESGCM.generate_key(bit_length=8 * AES_KEY_BYTES), os.urandom(IV_BYTES))
    envelope = EncryptedRequest(
        encrypted_flow_data=_text(AESGCM(session.aes_key).encrypt(session.iv, clear, None)),
        encrypted_aes_key=_text(public_key.encrypt(session.aes_key, OAEP)),
        initial_vector=_text(session.iv),
    )
    return envelope, session


def decrypt_response(body: str, session: Session) -> bytes:
    """The endpoint's answer in clear; ``DecryptionFailed`` if it does not authenticate."""
    try:
        return AESGCM(session.aes_key).decrypt(flip(session.iv), _b64(body, "response"), None)
    except (InvalidTag, ValueError):
        raise DecryptionFailed("the response does not authenticate") from None


def _text(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
