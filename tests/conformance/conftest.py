"""Real clients against the sandbox: a sandbox on a real port, its webhooks recorded, and pywa
and heyoo pointed at it (docs/cloudapi/conformance.md lists what each test covers).

The clients are synchronous (httpx, requests): the tests call them in a thread, so the sandbox
keeps serving on the test's event loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import heyoo
import httpx
import pytest
from pywa import WhatsApp

from tests.conformance.clients import running_sandbox
from tests.integration.sandbox_support import (
    CUSTOMER,
    TOKEN,
    Receiver,
    SandboxClient,
    phone_number_id,
)
from wapipe.sandbox.keys import WORLD
from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION


@dataclass
class Served:
    sandbox: SandboxClient
    receiver: Receiver
    phone_id: str
    waba_id: str

    @property
    def base_url(self) -> str:
        return str(self.sandbox.make_url(f"/{DEFAULT_GRAPH_VERSION}"))

    def open_window(self, wa_id: str = CUSTOMER) -> None:
        world = self.sandbox.app[WORLD]
        world.customers[wa_id].last_inbound_at = world.clock.now()


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    async with running_sandbox() as running:
        phone_id = phone_number_id(running.sandbox)
        waba_id = running.sandbox.app[WORLD].businesses[phone_id].waba_id
        yield Served(running.sandbox, running.receiver, phone_id, waba_id)


@pytest.fixture
def pywa_client(served: Served) -> Iterator[WhatsApp]:
    """pywa as a business runs it, its Graph base URL moved to the sandbox."""
    session = httpx.Client()
    client = WhatsApp(
        phone_id=served.phone_id,
        token=TOKEN,
        session=session,
        waba_id=served.waba_id,
        filter_updates=False,
    )
    session.base_url = served.base_url  # pywa sets Meta's; the sandbox stands in
    yield client
    session.close()


@pytest.fixture
def heyoo_client(served: Served) -> heyoo.WhatsApp:
    """heyoo pinned to Graph v14.0 and v15.0, long past their end of life: the sandbox answers
    them as Meta does, as the oldest version still served (shared/cloudapi/versions.py)."""
    client = heyoo.WhatsApp(token=TOKEN, phone_number_id=served.phone_id)
    root = str(served.sandbox.make_url(""))
    client.base_url = client.base_url.replace("https://graph.facebook.com", root)
    client.v15_base_url = client.v15_base_url.replace("https://graph.facebook.com", root)
    client.url = client.url.replace("https://graph.facebook.com", root)
    return client
