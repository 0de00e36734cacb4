"""Ctrl-C at a terminal reaches `wapipe up` and every service at once (one process group): all
of them end, promptly, and `wapipe up` exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.helpers import free_port, wait_until
from tests.integration.local_system import wapipe_up


def group_gone(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.timeout(120)
async def test_ctrl_c_stops_every_service_and_exits_0(vhost_url: str, tmp_path: Path) -> None:
    async with wapipe_up(vhost_url, tmp_path, free_port()) as system:
        os.killpg(system.process.pid, signal.SIGINT)  # what the terminal does
        assert await asyncio.wait_for(system.process.wait(), timeout=10) == 0
        await wait_until(lambda: group_gone(system.process.pid), timeout=5)
