"""The sender against the sandbox and the real RabbitMQ, on SQLite and PostgreSQL."""

from __future__ import annotations

import msgspec
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from sandbox.keys import WORLD
from shared.schemas.jobs import MarkReadJob, SendJob, TemplateMessage
from shared.settings import Settings
from shared.storage import schema
from shared.storage.database import open_database
from tests.helpers import drain, wait_until
from tests.integration.sandbox_support import CUSTOMER
from tests.integration.sender_support import (
    following,
    publish_jobs,
    sandbox_system,
)
from tests.integration.worker_support import running_worker
from workers import sender, status


async def job_states(database_url: str) -> dict[str, tuple[str, str | None, int | None]]:
    async with open_database(database_url) as engine:
        return await _states(engine)


async def _states(engine: AsyncEngine) -> dict[str, tuple[str, str | None, int | None]]:
    table = schema.send_jobs
    async with engine.connect() as connection:
        rows = await connection.execute(
            select(table.c.idempotency_key, table.c.state, table.c.wamid, table.c.error_code)
        )
        return {row[0]: (row[1], row[2], row[3]) for row in rows}


async def test_a_job_is_sent_recorded_and_published_as_accepted(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        job = system.text(body="hello from a job", metadata={"order": "42"})
        await publish_jobs(settings.amqp_url, [job])
        await events.until_done([job.idempotency_key])

        [accepted] = events.accepted(job.idempotency_key)
        [sent] = system.sends()
        assert accepted.wamid == sent.wamid
        assert accepted.metadata == {"order": "42"}
        assert accepted.to == CUSTOMER
        assert sent.biz_opaque_callback_data == f"wapipe:{job.idempotency_key}"
    states = await job_states(database_url)
    assert states[job.idempotency_key] == ("accepted", sent.wamid, None)


async def test_the_same_job_published_three_times_reaches_the_api_once(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        job = system.text(body="once")
        await publish_jobs(settings.amqp_url, [job, job, job])
        await events.until_done([job.idempotency_key])
        # Once more after it was done: its event again, no send.
        await publish_jobs(settings.amqp_url, [job])

        async def published_again() -> bool:
            return len(events.accepted(job.idempotency_key)) >= 2

        await wait_until(published_again, timeout=10)
        assert len(system.sends()) == 1
        assert {e.wamid for e in events.accepted(job.idempotency_key)} == {system.sends()[0].wamid}
        assert (await system.counts())["sent"] == 1


async def test_an_invalid_job_is_failed_with_its_reason_and_the_sender_goes_on(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        bad = b'{"kind": "send", "idempotency_key": "bad-1", "phone_number_id": "1"}'
        await publish_jobs(settings.amqp_url, [bad, b"not json"], number=system.number)
        good = system.text()
        await publish_jobs(settings.amqp_url, [good])
        await events.until_done([good.idempotency_key, "bad-1"])

        [failed] = events.failed("bad-1")
        assert failed.stage == "invalid"
        assert failed.details is not None
        assert "to" in failed.details
        assert events.accepted(good.idempotency_key)
        dead = []
        for shard in sender.SHARD_QUEUES:
            dead += await drain(settings.amqp_url, shard + ".dlq")
        assert sorted(m.body for m in dead) == sorted([bad, b"not json"])


async def test_an_expired_job_is_failed_unsent(settings: Settings, database_url: str) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        job = system.text(expires_at=1.0)
        await publish_jobs(settings.amqp_url, [job])
        await events.until_done([job.idempotency_key])
        [failed] = events.failed(job.idempotency_key)
        assert failed.stage == "expired"
        assert system.sends() == []


async def test_a_permanent_refusal_fails_the_job_with_its_code_and_title(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        template = msgspec.convert(
            {"type": "template", "template": {"name": "no_such", "language": {"code": "en_US"}}},
            TemplateMessage,
        )
        job = SendJob(
            idempotency_key="t-1", phone_number_id=system.number, to=CUSTOMER, message=template
        )
        await publish_jobs(settings.amqp_url, [job])
        await events.until_done(["t-1"])
        [failed] = events.failed("t-1")
        assert (failed.stage, failed.code) == ("send", 132001)
        assert failed.title
    assert (await job_states(database_url))["t-1"] == ("failed", None, 132001)


async def test_a_refusal_that_comes_as_a_failed_status_after_the_200_fails_the_job(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        following(settings.amqp_url) as events,
        running_worker(sender.KIND, system.settings),
    ):
        [stranger] = system.customers(1, prefix="1777")
        # This customer's window is closed: the send is taken, 131047 comes later as a status.
        system.sandbox.app[WORLD].customers[stranger].last_inbound_at = None
        job = system.text(to=stranger)
        await publish_jobs(settings.amqp_url, [job])

        async def refused() -> bool:
            return bool(events.failed(job.idempotency_key))

        await wait_until(refused, timeout=20)
        [accepted] = events.accepted(job.idempotency_key)
        [failed] = events.failed(job.idempotency_key)
        assert (failed.stage, failed.code, failed.wamid) == ("status", 131047, accepted.wamid)
    assert (await job_states(database_url))[job.idempotency_key][::2] == ("failed", 131047)


async def test_a_read_receipt_job_marks_the_message_read(
    settings: Settings, database_url: str
) -> None:
    async with (
        sandbox_system(settings, database_url) as system,
        running_worker(sender.KIND, system.settings),
    ):
        job = MarkReadJob(
            idempotency_key="read-1",
            phone_number_id=system.number,
            message_id="wamid.in-1",
            typing=True,
        )
        await publish_jobs(settings.amqp_url, [job])

        async def done() -> bool:
            return (await job_states(database_url)).get("read-1", ("",))[0] == "accepted"

        await wait_until(done, timeout=15)


async def test_an_unanswered_send_is_settled_by_its_status_without_a_resend(
    settings: Settings, database_url: str
) -> None:
    async with sandbox_system(settings, database_url) as system:
        quick = Settings(**{**msgspec.structs.asdict(system.settings), "graph_timeout_s": 0.5})
        await system.fault(endpoint="messages", count=1, answer_latency_s=2.0)
        async with (
            following(settings.amqp_url) as events,
            running_worker(status.KIND, system.settings),
            running_worker(sender.KIND, quick),
        ):
            job = system.text(body="answer lost")
            await publish_jobs(settings.amqp_url, [job])
            await events.until_done([job.idempotency_key], within_s=30)
            [accepted] = events.accepted(job.idempotency_key)
            [sent] = system.sends()
            assert accepted.wamid == sent.wamid
        assert len(system.sends()) == 1
