"""`wapipe up` answers flows out of the box: a flow created and published on the sandbox, a flow
message for it sent through the sender (`wapipe send job`), opened by its customer and filled
through the local endpoint (http://127.0.0.1:<ingress port>/flows) and the flows worker running
the booking example, and the nfm_reply that closes it stored, quoting the flow message."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.helpers import free_port, wait_until
from tests.integration.local_system import (
    CUSTOMER,
    REPOSITORY,
    SANDBOX_URL,
    LocalSystem,
    command,
    wapipe_up,
)

ANSWERS = {"APPOINTMENT": {"department": "beard", "slot": "mon-10"}, "DETAILS": {"name": "Bo"}}


async def sandbox(method: str, path: str, body: Any = None) -> Any:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, SANDBOX_URL + path, json=body) as answer,
    ):
        assert answer.status == 200, await answer.text()
        return await answer.json()


def stored_nfm_replies(system: LocalSystem) -> list[dict[str, Any]]:
    with sqlite3.connect(system.folder / "var" / "wapipe.db") as database:
        rows = database.execute("SELECT payload FROM messages WHERE type = 'interactive'")
        payloads = [json.loads(payload) for (payload,) in rows]
    return [p for p in payloads if p.get("interactive", {}).get("type") == "nfm_reply"]


def flow_job(phone_number_id: str, flow_id: str) -> dict[str, Any]:
    """The booking flow message, as a business sends it: the endpoint gives the first screen."""
    parameters = {
        "flow_message_version": "3",
        "flow_id": flow_id,
        "flow_cta": "Book",
        "flow_token": "booking:up",
        "flow_action": "data_exchange",
    }
    interactive = {
        "type": "flow",
        "body": {"text": "Book your visit"},
        "action": {"name": "flow", "parameters": parameters},
    }
    return {
        "kind": "send",
        "idempotency_key": "booking-flow-up",
        "phone_number_id": phone_number_id,
        "to": CUSTOMER,
        "message": {"type": "interactive", "interactive": interactive},
    }


@pytest.mark.timeout(180)
async def test_wapipe_up_answers_the_booking_flow_to_its_stored_nfm_reply(
    vhost_url: str, tmp_path: Path
) -> None:
    # The management commands from another terminal: pointed at the sandbox, as `wapipe up` is.
    cloud_api = {"WAPIPE_GRAPH_URL": SANDBOX_URL, "WAPIPE_ACCESS_TOKEN": "local-access-token"}
    async with wapipe_up(vhost_url, tmp_path, free_port(), **cloud_api) as system:
        assert "worker flows" in system.banner
        business = (await sandbox("GET", "/_sandbox/state"))["businesses"][0]
        waba_id = business["waba_id"]
        flow_json = str(REPOSITORY / "examples" / "booking_flow.json")
        code, out, err = await command(
            system, "flows", "create", "booking", flow_json, "--waba", waba_id
        )
        assert code == 0, err
        flow_id = json.loads(out)["id"]
        code, _, err = await command(system, "flows", "publish", flow_id)
        assert code == 0, err

        # The customer wrote first (the service window), then the business sends the flow
        # message through the sender; the customer opens it from the chat.
        hello = {"type": "text", "body": "I'd like to book"}
        await sandbox("POST", f"/_sandbox/customers/{CUSTOMER}/messages", hello)
        job = tmp_path / "flow-job.json"
        job.write_text(json.dumps(flow_job(business["phone_number_id"], flow_id)))
        code, out, err = await command(system, "send", "job", str(job), "--wait")
        assert code == 0, err
        found = re.search(r"accepted: (wamid\.\S+)", out)
        assert found is not None, out
        wamid = found.group(1)
        body = {"message_id": wamid, "answers": ANSWERS}
        played = await sandbox("POST", f"/_sandbox/customers/{CUSTOMER}/flows", body)
        assert played["error"] is None, played
        assert played["closed_with"]["name"] == "Bo"
        assert played["steps"][0]["action"] == "INIT"

        await wait_until(lambda: bool(stored_nfm_replies(system)), timeout=30)
        stored = stored_nfm_replies(system)[0]
        assert stored["context"]["id"] == wamid
        assert json.loads(stored["interactive"]["nfm_reply"]["response_json"]) == {
            "department": "beard",
            "slot": "mon-10",
            "name": "Bo",
            "flow_token": "booking:up",
        }
        health = await sandbox("GET", f"/_sandbox/flows/{flow_id}/health")
        assert health["requests"] == 4
        assert health["errors"] == 0
