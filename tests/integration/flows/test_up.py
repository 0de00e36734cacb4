"""`wapipe up` answers flows out of the box: a flow created and published on the sandbox, a flow
message for it sent through the sender (`wapipe send job`), opened by its customer and filled
through the local endpoint (http://127.0.0.1:<ingress port>/flows) and the flows worker running
the booking example, and the nfm_reply that closes it stored, quoting the flow message."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, wait_until
from tests.integration.flows.up_support import (
    CLOUD_API,
    open_flow,
    published_booking,
    sandbox,
    send_flow_message,
)
from tests.integration.local_system import LocalSystem, wapipe_up

ANSWERS = {"APPOINTMENT": {"department": "beard", "slot": "mon-10"}, "DETAILS": {"name": "Bo"}}


def stored_nfm_replies(system: LocalSystem) -> list[dict[str, Any]]:
    with sqlite3.connect(system.folder / "var" / "wapipe.db") as database:
        rows = database.execute("SELECT payload FROM messages WHERE type = 'interactive'")
        payloads = [json.loads(payload) for (payload,) in rows]
    return [p for p in payloads if p.get("interactive", {}).get("type") == "nfm_reply"]


@pytest.mark.timeout(180)
async def test_wapipe_up_answers_the_booking_flow_to_its_stored_nfm_reply(
    vhost_url: str, tmp_path: Path
) -> None:
    async with wapipe_up(vhost_url, tmp_path, free_port(), **CLOUD_API) as system:
        assert "worker flows" in system.banner
        number, flow_id = await published_booking(system)
        wamid = await send_flow_message(system, number, flow_id, "booking:up")
        played = await open_flow(wamid, ANSWERS)
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
