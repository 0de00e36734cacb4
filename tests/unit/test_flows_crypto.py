"""The Flows endpoint's crypto against pywa's (an independent implementation from PyPI), and
every way a request can fail to decrypt."""

from __future__ import annotations

import base64
import json
from functools import cache

import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from pywa.utils import default_flow_request_decryptor, default_flow_response_encryptor

from wapipe.shared.flows import crypto, keys
from wapipe.shared.flows.crypto import DecryptionFailed, EncryptedRequest

REQUEST = {"version": "3.0", "action": "INIT", "flow_token": "booking:1", "data": {"a": "é"}}


@cache
def key(number: int) -> RSAPrivateKey:
    return keys.generate()


def pem() -> str:
    return keys.private_pem(key(0)).decode()


def test_pywa_decrypts_a_request_sealed_as_meta_does() -> None:
    envelope, session = crypto.encrypt_request(json.dumps(REQUEST).encode(), key(0).public_key())
    clear, aes_key, iv = default_flow_request_decryptor(
        envelope.encrypted_flow_data, envelope.encrypted_aes_key, envelope.initial_vector, pem()
    )
    assert clear == REQUEST
    assert (aes_key, iv) == (session.aes_key, session.iv)


def test_pywa_reads_our_response_and_we_read_pywas() -> None:
    envelope, meta_session = crypto.encrypt_request(b"{}", key(0).public_key())
    _, session = crypto.decrypt_request(envelope, [key(0)])
    ours = crypto.encrypt_response(b'{"data": {"status": "active"}}', session)
    theirs = default_flow_response_encryptor({"data": {"status": "active"}}, *_pair(session))
    for body in (ours, theirs):
        assert json.loads(crypto.decrypt_response(body, meta_session)) == {
            "data": {"status": "active"}
        }


def _pair(session: crypto.Session) -> tuple[bytes, bytes]:
    return session.aes_key, session.iv


def test_a_request_pywa_would_answer_decrypts_with_our_key_in_both_directions() -> None:
    envelope, meta_session = crypto.encrypt_request(
        json.dumps(REQUEST).encode(), key(0).public_key()
    )
    clear, session = crypto.decrypt_request(envelope, [key(0)])
    assert json.loads(clear) == REQUEST
    answer = default_flow_response_encryptor({"screen": "A", "data": {}}, *_pair(session))
    assert crypto.encrypt_response(b"x", session) != crypto.encrypt_response(b"y", session)
    assert json.loads(crypto.decrypt_response(answer, meta_session)) == {"screen": "A", "data": {}}


def test_the_response_iv_is_the_request_iv_with_every_bit_flipped() -> None:
    assert crypto.flip(bytes([0x00, 0xFF, 0x0F])) == bytes([0xFF, 0x00, 0xF0])


def test_during_a_rotation_either_key_decrypts() -> None:
    for public in (key(0).public_key(), key(1).public_key()):
        envelope, _ = crypto.encrypt_request(b"{}", public)
        clear, _ = crypto.decrypt_request(envelope, [key(0), key(1)])
        assert clear == b"{}"


def test_a_request_for_another_key_does_not_decrypt() -> None:
    envelope, _ = crypto.encrypt_request(b"{}", key(1).public_key())
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_request(envelope, [key(0)])


def test_a_tampered_body_does_not_decrypt() -> None:
    envelope, _ = crypto.encrypt_request(b'{"action": "INIT"}', key(0).public_key())
    sealed = bytearray(base64.b64decode(envelope.encrypted_flow_data))
    sealed[0] ^= 1
    tampered = EncryptedRequest(
        base64.b64encode(sealed).decode(), envelope.encrypted_aes_key, envelope.initial_vector
    )
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_request(tampered, [key(0)])


@pytest.mark.parametrize(
    "envelope",
    [
        EncryptedRequest("not base64!", "AAAA", "AAAA"),
        EncryptedRequest("", "AAAA", "AAAA"),
        EncryptedRequest("AAAAAAAAAAAAAAAAAAAAAAAA", "AAAA", "AAAA"),
    ],
)
def test_garbage_does_not_decrypt(envelope: EncryptedRequest) -> None:
    with pytest.raises(DecryptionFailed):
        crypto.decrypt_request(envelope, [key(0)])


def test_the_session_never_shows_its_key() -> None:
    assert "***" in repr(crypto.Session(b"k" * 16, b"i" * 16))


def test_two_pem_keys_load_in_order_with_their_passphrases() -> None:
    text = keys.private_pem(key(0), "first").decode() + keys.private_pem(key(1)).decode()
    loaded = keys.load_private(text, ["wrong", "first"])
    assert [k.public_key().public_numbers() for k in loaded] == [
        key(0).public_key().public_numbers(),
        key(1).public_key().public_numbers(),
    ]


def test_a_pem_with_escaped_line_breaks_loads() -> None:
    assert len(keys.load_private(pem().replace("\n", "\\n"))) == 1


@pytest.mark.parametrize(
    ("text", "passphrases", "says"),
    [
        ("nothing here", (), "no PEM private key"),
        (None, (), "encrypted: set its passphrase"),
        (None, ("wrong",), "no passphrase opens it"),
    ],
)
def test_an_unusable_key_is_one_clear_line(
    text: str | None, passphrases: tuple[str, ...], says: str
) -> None:
    text = text if text is not None else keys.private_pem(key(0), "secret").decode()
    with pytest.raises(keys.FlowKeyError, match=says):
        keys.load_private(text, passphrases)
