"""The sandbox's webhooks through wapipe's own ingress: signatures accepted, every kind routed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.conftest import SECRETS, IngressClient, start_ingress
from tests.helpers import drain, wait_until
from tests.integration.sandbox_support import (
    CUSTOMER,
    SandboxClient,
    open_window,
    send,
    start_sandbox,
    text_to,
)
from wapipe.ingress.keys import PUBLISHER
from wapipe.sandbox.customers import INBOUND_KINDS
from wapipe.sandbox.keys import SENDER
from wapipe.sandbox.media_files import MEDIA_KINDS
from wapipe.shared.schemas.events import event_decoder
from wapipe.shared.settings import Settings


@pytest.fixture
async def ingress_and_sandbox(
    settings: Settings,
) -> AsyncIterator[tuple[IngressClient, SandboxClient]]:
    ingress = await start_ingress(settings)
    await wait_until(lambda: ingress.app[PUBLISHER].ready, timeout=10)
    # The sandbox signs with the first of the app secrets, as it would in a deployment.
    sandbox = await start_sandbox(str(ingress.make_url("/webhook")), secret=SECRETS[0])
    yield ingress, sandbox
    await sandbox.close()
    await ingress.close()


async def test_every_kind_the_sandbox_sends_is_accepted_and_routed(
    ingress_and_sandbox: tuple[IngressClient, SandboxClient], settings: Settings
) -> None:
    _, sandbox = ingress_and_sandbox
    for kind in INBOUND_KINDS:
        response = await sandbox.post(
            f"/_sandbox/customers/{CUSTOMER}/messages", json={"type": kind}
        )
        assert response.status == 200
    open_window(sandbox)
    assert (await send(sandbox, text_to()))[0] == 200
    sender = sandbox.app[SENDER]
    await wait_until(sender.idle, timeout=10)

    deliveries = sender.deliveries.values()
    assert all(d.delivered and [a["status"] for a in d.attempts] == [200] for d in deliveries)
    messages = [event_decoder.decode(m.body) for m in await drain(settings.amqp_url, "wa.message")]
    assert sorted(e.routing_key for e in messages) == sorted(f"message.{k}" for k in INBOUND_KINDS)
    media = await drain(settings.amqp_url, "wa.media")
    assert sorted(str(m.routing_key) for m in media) == sorted(f"message.{k}" for k in MEDIA_KINDS)
    statuses = await drain(settings.amqp_url, "wa.status")
    assert sorted(str(m.routing_key) for m in statuses) == [
        "status.delivered",
        "status.read",
        "status.sent",
    ]
    assert await drain(settings.amqp_url, "wa.quarantine") == []
