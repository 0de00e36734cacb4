"""Playing Meta against the Flows endpoint: requests sealed to the business's public key and
signed with the app secret, answers opened with the request's session."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from tests.conftest import SECRETS, IngressClient
from wapipe.shared.flows import crypto, keys
from wapipe.shared.signature import HEADER, sign


async def post_sealed(
    client: IngressClient, body: bytes, secret: str = SECRETS[0]
) -> tuple[int, str]:
    headers = {HEADER: sign(secret.encode(), body), "content-type": "application/json"}
    response = await client.post("/flows", data=body, headers=headers)
    return response.status, await response.text()


async def call(
    client: IngressClient,
    public_key: RSAPublicKey,
    request: dict[str, Any],
    secret: str = SECRETS[0],
) -> tuple[int, Any]:
    """The status and the answer in clear (or the plain text of an answer that is not sealed)."""
    envelope, session = crypto.encrypt_request(json.dumps(request).encode(), public_key)
    status, text = await post_sealed(client, crypto.envelope_encoder.encode(envelope), secret)
    try:
        return status, json.loads(crypto.decrypt_response(text, session))
    except crypto.DecryptionFailed:
        return status, text


HANDLERS = (
    "tests.integration.flow_handlers:slow",
    "tests.integration.flow_handlers:broken",
    "wapipe.examples.booking_flow:handle",
)
DEADLINE_S = 1.0


@cache
def private_key(number: int) -> RSAPrivateKey:
    return keys.generate()
