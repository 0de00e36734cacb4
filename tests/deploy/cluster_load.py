"""Load for the cluster test: signed webhooks from this host to the stack's ingress, retried as
Meta retries (until a 200), and send jobs published from inside the stack by a sender's own
Python (its WAPIPE_AMQP_URL is the three nodes), each published again until confirmed."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Final

import aiohttp

from wapipe.shared.signature import HEADER, sign

RETRY_S: Final = 0.5  # Meta retries for longer and slower; sooner shows the outage's end sooner


def text_webhook(number: str, wamid: str, sender: str, body: str) -> bytes:
    """A customer's text message as Meta sends it (as tests/data/cloudapi/webhooks/ has it)."""
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550101234", "phone_number_id": number},
        "contacts": [{"profile": {"name": "Load"}, "wa_id": sender}],
        "messages": [
            {
                "from": sender,
                "id": wamid,
                "timestamp": str(int(time.time())),
                "type": "text",
                "text": {"body": body},
            }
        ],
    }
    envelope = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "109876543210987", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(envelope, separators=(",", ":")).encode()


@dataclass
class Answers:
    """Every answer the ingress gave: (monotonic time, HTTP status, or 0 for no answer)."""

    seen: list[tuple[float, int]] = field(default_factory=list)

    def longest_without_200_s(self, since: float) -> float:
        """The longest stretch after ``since`` from a non-200 answer to the next 200."""
        longest, failing_from = 0.0, None
        for at, status in sorted(self.seen):
            if at < since:
                continue
            if status != 200 and failing_from is None:
                failing_from = at
            elif status == 200 and failing_from is not None:
                longest, failing_from = max(longest, at - failing_from), None
        return longest

    def refused(self) -> int:
        return sum(1 for _, status in self.seen if status != 200)


async def send_webhooks(
    url: str, secret: str, number: str, wamids: list[str], rate_per_s: float, answers: Answers
) -> None:
    """POST one webhook per wamid at ``rate_per_s``, each until it is answered 200."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

        async def deliver(wamid: str, index: int) -> None:
            body = text_webhook(number, wamid, f"1631666{index % 10000:04d}", f"load {wamid}")
            headers = {HEADER: sign(secret.encode(), body), "Content-Type": "application/json"}
            while True:
                try:
                    async with session.post(url, data=body, headers=headers) as answer:
                        status = answer.status
                except (aiohttp.ClientError, TimeoutError):
                    status = 0
                answers.seen.append((time.monotonic(), status))
                if status == 200:
                    return
                await asyncio.sleep(RETRY_S)

        started = time.monotonic()
        tasks = []
        for index, wamid in enumerate(wamids):
            await asyncio.sleep(max(0.0, started + index / rate_per_s - time.monotonic()))
            tasks.append(asyncio.ensure_future(deliver(wamid, index)))
        await asyncio.gather(*tasks)


# Run by the sender's Python inside the stack: argv is (key prefix, count, rate, number,
# recipients comma-separated).
PUBLISH_JOBS: Final = """
import asyncio, contextlib, sys, time
import msgspec
from wapipe.shared.publisher import JobPublisher
from wapipe.shared.schemas.jobs import Job
from wapipe.shared.settings import from_env

prefix, count, rate, number = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
recipients = sys.argv[5].split(",")
settings = from_env()

def job(i):
    return msgspec.json.decode(msgspec.json.encode({
        "kind": "send", "idempotency_key": f"{prefix}-{i}", "phone_number_id": number,
        "to": recipients[i % len(recipients)],
        "message": {"type": "text", "text": {"body": f"job {i}"}},
    }), type=Job)

async def main():
    started, again, jobs = time.monotonic(), 0, None
    for i in range(count):
        await asyncio.sleep(max(0.0, started + i / rate - time.monotonic()))
        while True:
            try:
                if jobs is None:
                    jobs = await JobPublisher(settings, name="cluster-test").__aenter__()
                await asyncio.wait_for(jobs.publish(job(i)), 10)
                break
            except Exception:
                again += 1
                if jobs is not None:
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(jobs.__aexit__(None, None, None), 5)
                jobs = None
                await asyncio.sleep(0.5)
    print(f"published {count} jobs, {again} publishes tried again", flush=True)

asyncio.run(main())
"""
