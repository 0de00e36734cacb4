"""The endpoint's RSA keys: made, written and read as PEM.

``WAPIPE_FLOWS_PRIVATE_KEY`` (or ``_FILE``) holds one PEM private key, or two during a rotation
(the old and the new, one after the other): a request is tried with each. Encrypted PEMs are
opened with ``WAPIPE_FLOWS_PRIVATE_KEY_PASSPHRASE`` (comma-separated when the keys have
different ones; each is tried). Meta asks for 2048-bit RSA (docs/cloudapi/flows.md, "Keys").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from wapipe.shared.settings import Settings, SettingsError

KEY_BITS: Final = 2048
PUBLIC_EXPONENT: Final = 65537
_PEM_BLOCK: Final = re.compile(
    r"-----BEGIN ([A-Z ]*PRIVATE KEY)-----.*?-----END \1-----", re.DOTALL
)


class FlowKeyError(ValueError):
    """A key that cannot be used: one line naming what is wrong, never the key."""


def generate() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=KEY_BITS)


def private_pem(key: RSAPrivateKey, passphrase: str = "") -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_pem(key: RSAPrivateKey | RSAPublicKey) -> str:
    public = key.public_key() if isinstance(key, RSAPrivateKey) else key
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def write_pair(folder: Path, passphrase: str = "") -> tuple[Path, Path]:
    """A new pair as ``private.pem`` (readable by its owner only) and ``public.pem``; an
    existing private key is never overwritten (it may be in use)."""
    folder.mkdir(parents=True, exist_ok=True)
    private_path, public_path = folder / "private.pem", folder / "public.pem"
    if private_path.exists():
        raise FlowKeyError(f"{private_path} exists: move it away first (it may be in use)")
    key = generate()
    private_path.touch(mode=0o600)
    private_path.write_bytes(private_pem(key, passphrase))
    public_path.write_text(public_pem(key))
    return private_path, public_path


def load_public(pem: str) -> RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except ValueError:
        raise FlowKeyError("not a PEM public key") from None
    if not isinstance(key, RSAPublicKey):
        raise FlowKeyError("the public key is not RSA")
    return key


def endpoint_keys(settings: Settings) -> tuple[RSAPrivateKey, ...]:
    """The endpoint's keys from the settings (none when unset); a ``SettingsError`` naming the
    variable when they cannot be used."""
    if not settings.flows_private_key:
        return ()
    try:
        return load_private(settings.flows_private_key, settings.flows_private_key_passphrase)
    except FlowKeyError as exc:
        raise SettingsError(f"WAPIPE_FLOWS_PRIVATE_KEY: {exc}") from None


def load_private(text: str, passphrases: Sequence[str] = ()) -> tuple[RSAPrivateKey, ...]:
    """Every private key in ``text`` (PEM blocks, in order; an environment variable may carry
    its line breaks as ``\\n``); ``FlowKeyError`` when there is none, or one cannot be opened
    with any passphrase."""
    text = text.replace("\\n", "\n")
    blocks = [match.group(0) for match in _PEM_BLOCK.finditer(text)]
    if not blocks:
        raise FlowKeyError("no PEM private key (-----BEGIN ... PRIVATE KEY-----) found")
    return tuple(_open(block, number, passphrases) for number, block in enumerate(blocks, 1))


def _open(block: str, number: int, passphrases: Sequence[str]) -> RSAPrivateKey:
    encrypted = "ENCRYPTED" in block
    if encrypted and not passphrases:
        raise FlowKeyError(f"private key {number} is encrypted: set its passphrase")
    for passphrase in passphrases if encrypted else ("",):
        try:
            key = serialization.load_pem_private_key(
                block.encode(), passphrase.encode() if passphrase else None
            )
        except (ValueError, TypeError):
            continue
        if not isinstance(key, RSAPrivateKey):
            raise FlowKeyError(f"private key {number} is not RSA")
        return key
    reason = "no passphrase opens it" if encrypted else "it cannot be read"
    raise FlowKeyError(f"private key {number}: {reason}")
