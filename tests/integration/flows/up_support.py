"""The booking flow on `wapipe up`'s sandbox, as its business runs it: created and published
with `wapipe flows`, a flow message sent through the sender (`wapipe send job`)."""

from __future__ import annotations

import json
import re
from typing import Any, Final

import aiohttp

from tests.integration.local_system import (
    CUSTOMER,
    REPOSITORY,
    SANDBOX_URL,
    LocalSystem,
    command,
)

# The management commands from another terminal: pointed at the sandbox, as `wapipe up` is.
CLOUD_API: Final = {"WAPIPE_GRAPH_URL": SANDBOX_URL, "WAPIPE_ACCESS_TOKEN": "local-access-token"}


async def sandbox(method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, SANDBOX_URL + path, json=body) as answer,
    ):
        assert answer.status == 200, await answer.text()
        return await answer.json()


async def published_booking(system: LocalSystem) -> tuple[str, str]:
    """The booking flow, published on the sandbox's WABA: (phone number id, flow id)."""
    business = (await sandbox("GET", "/_sandbox/state"))["businesses"][0]
    flow_json = str(REPOSITORY / "examples" / "booking_flow.json")
    waba = ("--waba", business["waba_id"])
    code, out, err = await command(system, "flows", "create", "booking", flow_json, *waba)
    assert code == 0, err
    flow_id: str = json.loads(out)["id"]
    code, _, err = await command(system, "flows", "publish", flow_id)
    assert code == 0, err
    return business["phone_number_id"], flow_id


def flow_job(phone_number_id: str, flow_id: str, token: str) -> dict[str, Any]:
    """The booking flow message, as a business sends it: the endpoint gives the first screen."""
    parameters = {
        "flow_message_version": "3",
        "flow_id": flow_id,
        "flow_cta": "Book",
        "flow_token": token,
        "flow_action": "data_exchange",
    }
    interactive = {
        "type": "flow",
        "body": {"text": "Book your visit"},
        "action": {"name": "flow", "parameters": parameters},
    }
    return {
        "kind": "send",
        "idempotency_key": f"flow-{token}",
        "phone_number_id": phone_number_id,
        "to": CUSTOMER,
        "message": {"type": "interactive", "interactive": interactive},
    }


async def send_flow_message(system: LocalSystem, number: str, flow_id: str, token: str) -> str:
    """The customer writes first (the service window); then the business sends the flow
    message through the sender: its wamid."""
    hello = {"type": "text", "body": "I'd like to book"}
    await sandbox("POST", f"/_sandbox/customers/{CUSTOMER}/messages", hello)
    job = system.folder / f"flow-{token.replace(':', '-')}.json"
    job.write_text(json.dumps(flow_job(number, flow_id, token)))
    code, out, err = await command(system, "send", "job", str(job), "--wait")
    assert code == 0, err
    found = re.search(r"accepted: (wamid\.\S+)", out)
    assert found is not None, out
    return found.group(1)


async def open_flow(message_id: str, answers: dict[str, dict[str, Any]]) -> Any:
    """The customer opens the flow message and fills it: what the sandbox saw."""
    body = {"message_id": message_id, "answers": answers}
    return await sandbox("POST", f"/_sandbox/customers/{CUSTOMER}/flows", body)
