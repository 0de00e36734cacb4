"""What the sandbox tests share: a receiver standing in for the ingress, a sandbox to start."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from tests.helpers import cloudapi_dir
from wapipe.sandbox.app import create_app
from wapipe.sandbox.config import SandboxConfig
from wapipe.sandbox.keys import WORLD
from wapipe.sandbox.webhooks import Retry
from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION
from wapipe.shared.schemas.webhook import MessagesValue, decode_envelope, decode_value
from wapipe.shared.settings import Settings
from wapipe.shared.signature import HEADER, is_valid, parse

TOKEN = "sandbox-test-token"
SECRET = "sandbox-test-secret"
CUSTOMER = "16315551181"
GRAPH = f"/{DEFAULT_GRAPH_VERSION}"

SandboxClient = TestClient[web.Request, web.Application]


@dataclass
class Receiver:
    """Stands where wapipe's ingress would: records each webhook, answers as scripted."""

    answers: list[int] = field(default_factory=list)  # statuses to answer first; then 200
    latencies_s: list[float] = field(default_factory=list)  # how slow each answer is, in turn
    answered: list[bytes] = field(default_factory=list)  # bodies in the order they were done
    bodies: list[bytes] = field(default_factory=list)
    signed: list[bool] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        digest = parse(request.headers.get(HEADER))
        self.signed.append(digest is not None and is_valid(digest, body, (SECRET.encode(),)))
        self.bodies.append(body)
        if self.latencies_s:  # a receiver that takes its time, differently each request
            await asyncio.sleep(self.latencies_s.pop(0))
        self.answered.append(body)
        return web.Response(status=self.answers.pop(0) if self.answers else 200)

    def statuses(self, bodies: list[bytes] | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        """(wamid, status, raw status object) of every status received, in arrival order (or
        in the order of ``bodies``)."""
        found = []
        for body in self.bodies if bodies is None else bodies:
            for entry in decode_envelope(body).entry:
                for change in entry.changes:
                    value = decode_value(change.field, change.value)
                    if isinstance(value, MessagesValue):
                        raw = json.loads(bytes(change.value))
                        found += [
                            (s.id, s.status, r)
                            for s, r in zip(value.statuses, raw.get("statuses", []), strict=True)
                        ]
        return found


async def start_sandbox(webhook_url: str, secret: str = SECRET, **config: Any) -> SandboxClient:
    settings = Settings(access_token=TOKEN, app_secrets=(secret,))
    defaults: dict[str, Any] = {"webhook_url": webhook_url, "retry": Retry(first_s=0.02)}
    client: SandboxClient = TestClient(
        TestServer(create_app(settings, SandboxConfig(**{**defaults, **config})))
    )
    await client.start_server()
    return client


def phone_number_id(client: SandboxClient) -> str:
    return next(iter(client.app[WORLD].businesses))


def open_window(client: SandboxClient, wa_id: str = CUSTOMER) -> None:
    world = client.app[WORLD]
    world.customers[wa_id].last_inbound_at = world.clock.now()


async def send(
    client: SandboxClient, body: dict[str, Any], token: str = TOKEN, number: str | None = None
) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        f"{GRAPH}/{number or phone_number_id(client)}/messages",
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status, await response.json()


def text_to(to: str = CUSTOMER, body: str = "hello") -> dict[str, Any]:
    return {"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": body}}


def response_sample(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((cloudapi_dir() / "responses" / name).read_bytes())
    return loaded


def same_keys(got: Any, expected: Any) -> bool:
    """The same shape: the same keys all the way down (values may differ)."""
    if isinstance(expected, dict):
        return (
            isinstance(got, dict)
            and got.keys() == expected.keys()
            and all(same_keys(got[key], expected[key]) for key in expected)
        )
    if isinstance(expected, list):
        return (
            isinstance(got, list)
            and bool(got) == bool(expected)
            and all(same_keys(g, expected[0]) for g in got)
        )
    return True
