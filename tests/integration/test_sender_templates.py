"""The sender's early template check (WAPIPE_SENDER_CHECK_TEMPLATES) against templates stored by
``wapipe templates sync``: unknown, rejected or miscounted template jobs fail with no API call."""

from __future__ import annotations

from typing import Any

import msgspec

from tests.conftest import with_settings
from tests.helpers import wait_until
from tests.integration.account_support import environment, wapipe
from tests.integration.sandbox_support import CUSTOMER
from tests.integration.sender_support import (
    following,
    publish_jobs,
    requests_to_messages,
    sandbox_system,
)
from tests.integration.test_sandbox_business import ORDER_UPDATE, create
from tests.integration.worker_support import running_worker
from wapipe.sandbox.keys import WORLD
from wapipe.shared.schemas.jobs import SendJob
from wapipe.shared.settings import Settings
from wapipe.workers import sender


def template_job(key: str, number: str, name: str, body_params: int) -> SendJob:
    message: dict[str, Any] = {
        "type": "template",
        "template": {
            "name": name,
            "language": {"code": "en_US"},
            "components": [
                {
                    "type": "body",
                    "parameters": [{"type": "text", "text": f"p{i}"} for i in range(body_params)],
                }
            ],
        },
    }
    return msgspec.convert(
        {"idempotency_key": key, "phone_number_id": number, "to": CUSTOMER, "message": message},
        SendJob,
    )


async def test_template_jobs_that_cannot_be_sent_fail_before_any_call(
    settings: Settings, database_url: str
) -> None:
    async with sandbox_system(settings, database_url) as system:
        world = system.sandbox.app[WORLD]
        await create(system.sandbox, ORDER_UPDATE)
        await create(system.sandbox, {**ORDER_UPDATE, "name": "reject_promo"})
        await wait_until(
            lambda: {t.status for t in world.template_records.values()} == {"APPROVED", "REJECTED"}
        )
        synced = await wapipe(environment(system.sandbox, database_url), "templates", "sync")
        assert synced.code == 0, synced.err
        jobs = [
            template_job("unknown", system.number, "no_such_template", 2),
            template_job("rejected", system.number, "reject_promo", 2),
            template_job("miscounted", system.number, "order_update", 1),
            template_job("good", system.number, "order_update", 2),
        ]
        worker = with_settings(system.settings, sender_check_templates=True)
        async with following(settings.amqp_url) as events, running_worker(sender.KIND, worker):
            await publish_jobs(settings.amqp_url, jobs)
            await events.until_done([job.idempotency_key for job in jobs])
        reasons = {}
        for key in ("unknown", "rejected", "miscounted"):
            [failed] = events.failed(key)
            assert (failed.stage, failed.code) == ("invalid", None)
            reasons[key] = failed.title
        assert reasons == {
            "unknown": "template no_such_template (en_US) is not known: "
            "run `wapipe templates sync`",
            "rejected": "template reject_promo (en_US) is REJECTED, not APPROVED",
            "miscounted": "template order_update (en_US): its body takes 2 parameters, "
            "the job gives 1",
        }
        assert events.accepted("good")
        assert len(requests_to_messages(system)) == 1  # the good one alone reached the API


async def test_without_the_setting_the_api_judges_the_template(
    settings: Settings, database_url: str
) -> None:
    async with sandbox_system(settings, database_url) as system:
        job = template_job("unknown", system.number, "no_such_template", 0)
        async with (
            following(settings.amqp_url) as events,
            running_worker(sender.KIND, system.settings),
        ):
            await publish_jobs(settings.amqp_url, [job])
            await events.until_done(["unknown"])
        [failed] = events.failed("unknown")
        assert (failed.stage, failed.code) == ("send", 132001)
        assert len(requests_to_messages(system)) == 1
