"""`wapipe send --wait` prints the job's outcome: accepted with its wamid, or failed with its
code and title and a non-zero exit; `wapipe jobs show` says the same afterwards."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from tests.helpers import free_port
from tests.integration.local_system import CUSTOMER, SANDBOX_URL, command, wapipe_up


@pytest.mark.timeout(180)
async def test_send_wait_prints_the_outcome_and_fails_with_the_code(
    vhost_url: str, tmp_path: Path
) -> None:
    async with wapipe_up(vhost_url, tmp_path, free_port()) as system:
        send = ("send", "text", "--to", CUSTOMER, "--body", "hi", "--wait", "--key")
        code, out, _ = await command(system, *send, "good-1")
        assert code == 0
        assert out.splitlines()[0] == "published good-1 to send.118765000000000002"
        assert out.splitlines()[1].startswith("accepted: wamid.")

        fault = {"endpoint": "messages", "code": 100, "count": 1}
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{SANDBOX_URL}/_sandbox/faults", json=fault) as answer,
        ):
            assert answer.status == 200
        code, out, _ = await command(system, *send, "bad-1")
        assert code == 1
        assert out.splitlines()[1].startswith("failed at send: 100 ")

        code, out, _ = await command(system, "jobs", "show", "bad-1")
        assert code == 0
        assert "state:    failed" in out
        assert "error:    100 " in out
