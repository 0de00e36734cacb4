"""The sender addresses a customer by phone number or by BSUID (``recipient``), refuses a job
that names them other than once, and fails a send to a blocked customer for good; on SQLite
and PostgreSQL, against the sandbox and the real RabbitMQ."""

from __future__ import annotations

import json
import uuid

from tests.helpers import drain
from tests.integration.sandbox_support import CUSTOMER
from tests.integration.sender_support import (
    System,
    following,
    publish_jobs,
    requests_to_messages,
    sandbox_system,
)
from tests.integration.test_sender import job_states
from tests.integration.worker_support import running_worker
from wapipe.sandbox.keys import WORLD
from wapipe.shared import topology
from wapipe.shared.schemas.jobs import SendJob, text_message
from wapipe.shared.settings import Settings
from wapipe.workers import sender
from wapipe.workers.deadletters import describe


def to_bsuid(system: System, bsuid: str, body: str = "olá") -> SendJob:
    return SendJob(
        idempotency_key=str(uuid.uuid4()),
        phone_number_id=system.number,
        recipient=bsuid,
        message=text_message(body),
    )


async def test_a_job_to_a_bsuid_is_sent_as_recipient_and_accepted(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        bsuid = system.sandbox.app[WORLD].customers[CUSTOMER].user_id
        job = to_bsuid(system, bsuid)
        await publish_jobs(settings.amqp_url, [job])
        await events.until_done([job.idempotency_key])
        [accepted] = events.accepted(job.idempotency_key)
        [sent] = system.sends()
    assert (accepted.to, accepted.recipient, accepted.wa_id) == (None, bsuid, bsuid)
    assert sent.to_bsuid
    assert sent.wamid == accepted.wamid
    states = await job_states(database_url)
    assert states[job.idempotency_key] == ("accepted", sent.wamid, None)


def raw_job(number: str, key: str, **address: object) -> bytes:
    return json.dumps(
        {
            "kind": "send",
            "idempotency_key": key,
            "phone_number_id": number,
            **address,
            "message": {"type": "text", "text": {"body": "hi"}},
        }
    ).encode()


async def test_a_job_with_no_customer_or_a_malformed_bsuid_is_dead_lettered_with_its_reason(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        neither = raw_job(system.number, "no-customer")
        malformed = raw_job(system.number, "bad-bsuid", recipient="us.1349-12")
        both = raw_job(system.number, "both", to=CUSTOMER, recipient="US.1349120865530274")
        await publish_jobs(settings.amqp_url, [neither, malformed, both], number=system.number)
        good = system.text()
        await publish_jobs(settings.amqp_url, [good])
        await events.until_done([good.idempotency_key, "no-customer", "bad-bsuid", "both"])

        reasons = {}
        for key in ("no-customer", "bad-bsuid", "both"):
            [failed] = events.failed(key)
            assert (failed.stage, failed.code) == ("invalid", None)
            assert failed.details is not None
            assert "\n" not in failed.details
            reasons[key] = failed.details
        assert "to (a phone number) or recipient (a BSUID)" in reasons["no-customer"]
        assert "$.recipient" in reasons["bad-bsuid"]
        assert "to (a phone number) or recipient (a BSUID)" in reasons["both"]
        assert events.accepted(good.idempotency_key)  # nothing else held up or lost
        assert len(system.sends()) == 1
        dead = []
        for shard in topology.SHARD_QUEUES:
            dead += await drain(settings.amqp_url, shard + ".dlq")
        assert sorted(m.body for m in dead) == sorted([neither, malformed, both])
        for letter in dead:  # each with its reason, as `wapipe dlq list` shows it
            described = describe(letter.message_id, letter.headers, letter.body)
            key = json.loads(letter.body)["idempotency_key"]
            assert described.error == reasons[key]
            assert described.queue in topology.SHARD_QUEUES


async def test_a_send_to_a_blocked_customer_fails_with_130403_once_and_others_go_on(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        [other] = system.customers(1)
        world = system.sandbox.app[WORLD]
        world.customers[CUSTOMER].blocked_by[system.number] = world.clock.now()
        blocked, fine = system.text(), system.text(to=other)
        await publish_jobs(settings.amqp_url, [blocked, fine])
        await events.until_done([blocked.idempotency_key, fine.idempotency_key])
        [failed] = events.failed(blocked.idempotency_key)
        assert (failed.stage, failed.code) == ("send", 130403)
        assert events.accepted(fine.idempotency_key)
        tried = [r for r in requests_to_messages(system) if r.code == 130403]
        assert len(tried) == 1  # final: never tried again
    states = await job_states(database_url)
    assert states[blocked.idempotency_key] == ("failed", None, 130403)
