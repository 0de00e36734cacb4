"""`wapipe topology --remove --yes` clears the broker of wapipe: every queue and exchange it
declared; without --yes it refuses."""

from __future__ import annotations

import asyncio
import os
import sys

from yarl import URL

from tests.helpers import Broker
from wapipe.shared.topology import EXCHANGES, declare_at, queue_names


async def wapipe(*args: str, amqp_url: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wapipe",
        *args,
        env={**os.environ, "WAPIPE_AMQP_URL": amqp_url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_topology_remove_deletes_every_queue_and_exchange(
    broker: Broker, vhost_url: str
) -> None:
    vhost = URL(vhost_url).path.lstrip("/")
    await declare_at(vhost_url)
    queues = {queue["name"] for queue in broker.api("GET", f"/queues/{vhost}")}
    assert queues == set(queue_names())

    assert await wapipe("topology", "--remove", amqp_url=vhost_url) == (
        2,
        "wapipe topology: --remove deletes every queue and what it holds: add --yes\n",
    )
    assert len(broker.api("GET", f"/queues/{vhost}")) == len(queues)

    code, out = await wapipe("topology", "--remove", "--yes", amqp_url=vhost_url)
    assert (code, out) == (0, "removed every wapipe queue and exchange\n")
    assert broker.api("GET", f"/queues/{vhost}") == []
    left = {exchange["name"] for exchange in broker.api("GET", f"/exchanges/{vhost}")}
    assert not left & {spec.name for spec in EXCHANGES}
    assert (await wapipe("topology", "--remove", "--yes", amqp_url=vhost_url))[0] == 0  # again
