"""One send: checked, marked ``sending``, given a slot, called, and its answer recorded.

    refusal? ──yes──> failed (never sent)
    mark sending (only from queued: of two holders, one sends) ──no──> not ours: ack
    slot (paced sends, workers/sender/slots.py) ──none: paused or stopping──> again, unsent
    call ──answer──> accepted: record, outbound.accepted, ack
         └─error──> decide (workers/sender/policy.py): again, failed, or unknown

Every path ends in an ack, a give-back or a requeue (``Again``); then the lane hears ``done``
and the turn ends, whatever happens. An event follows only a state change that happened;
otherwise the record's own is published.

``Sending`` takes what it uses, each named: no part of the process is reached through another.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from wapipe.shared.amqp import EventPublisher
from wapipe.shared.cloudapi.client import CloudApi, SentMessage
from wapipe.shared.cloudapi.errors import CloudApiError, Scope
from wapipe.shared.media_limits import check_media, is_animated_webp
from wapipe.shared.schemas.jobs import Job, MarkReadJob, SendJob, api_message, local_file
from wapipe.shared.schemas.outbound import Stage
from wapipe.shared.storage import send_jobs
from wapipe.shared.storage.messages import outbound_row
from wapipe.workers.sender import policy
from wapipe.workers.sender.events import (
    accepted_event,
    callback_data,
    event_of_record,
    failed_event,
    outgoing,
)
from wapipe.workers.sender.held import Holding, Pending
from wapipe.workers.sender.journal import Journal
from wapipe.workers.sender.lane import Again, Lane
from wapipe.workers.sender.metrics import SenderMetrics
from wapipe.workers.sender.slots import Turn

log = logging.getLogger(__name__)


class TemplateCheck(Protocol):
    async def refusal(self, job: Job) -> tuple[Stage, str] | None: ...


@dataclass(frozen=True)
class Rules:
    """The settings a send obeys."""

    files_dir: Path | None  # WAPIPE_SENDER_FILES_DIR, resolved: None, no local files
    max_attempts: int  # WAPIPE_SENDER_MAX_ATTEMPTS
    auth_pause_s: float  # WAPIPE_SENDER_PAUSE_S


class Sending:
    def __init__(
        self,
        *,
        api: CloudApi,
        journal: Journal,
        templates: TemplateCheck,
        events: EventPublisher,
        holding: Holding,
        metrics: SenderMetrics,
        rules: Rules,
    ) -> None:
        self._api = api
        self._journal = journal
        self._templates = templates
        self._events = events
        self._holding = holding
        self._metrics = metrics
        self._rules = rules

    async def send(self, lane: Lane, pending: Pending, turn: Turn) -> None:
        again: Again | None = None
        try:
            again = await self._send(lane, pending, turn)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A record or an event that cannot be written, or a bug: hand the job back to the
            # queue rather than hold it forever (redelivered, its record decides; the delivery
            # limit ends a loop in the dead-letter queue).
            log.exception("send failed unexpectedly", extra={"key": pending.key})
            await self._holding.give_back(pending, lane.away)
        finally:
            turn.end()
            lane.done(pending, again)

    async def _send(self, lane: Lane, pending: Pending, turn: Turn) -> Again | None:
        why = refusal(pending.job, self._rules.files_dir, time.time())
        why = why or await self._templates.refusal(pending.job)
        if why is not None:
            stage, reason = why
            await self._fail(pending, stage, reason, transition=send_jobs.REFUSE)
            return None
        if not await self._journal.mark_sending(pending.key):
            # Sent or being sent by another holder (a replica that took the shard over).
            await self._holding.ack(pending)
            return None
        if pending.paced and not await turn.take():
            return await self._again(pending)  # paused or stopping meanwhile: back, unsent
        try:
            sent = await call(self._api, pending.job)
        except CloudApiError as error:
            answered_at = lane.clock()
            # Acted on before its slot frees: after a 130429 the number is blocked first.
            again = await self._refused(lane, pending, error)
            turn.answered(answered_at)
            return again
        answered_at = lane.clock()
        turn.answered(answered_at)  # the record need not hold the slot: the answer is in
        await self._accepted(lane, pending, sent, answered_at)
        return None

    async def _accepted(
        self, lane: Lane, pending: Pending, sent: SentMessage | None, answered_at: float
    ) -> None:
        job, now = pending.job, time.time()
        if isinstance(job, SendJob) and sent is not None:
            lane.sent(pending.recipient, answered_at)
            change = send_jobs.ACCEPT(pending.key, now, wamid=sent.wamid)
            if await self._journal.write(change, outbound_row(job, sent.wamid, sent.wa_id, now)):
                await self._events.publish([outgoing(accepted_event(job, sent, now))])
                self._metrics.accepted.labels(job.phone_number_id).inc()
                log.info("sent", extra={"key": pending.key, "wamid": sent.wamid})
            else:  # settled meanwhile (a failed status came first): its own event stands
                await self._republish(pending.key)
        else:  # a read receipt: done, no event
            lane.sent(pending.recipient, None)
            await self._journal.write(send_jobs.ACCEPT(pending.key, now))
        await self._holding.ack(pending)

    async def _refused(self, lane: Lane, pending: Pending, error: CloudApiError) -> Again | None:
        self._metrics.refused.labels(str(error.code)).inc()
        decision = policy.decide(
            error,
            pending.job,
            pending.attempts,
            lane.pause_strikes,
            max_attempts=self._rules.max_attempts,
            auth_pause_s=self._rules.auth_pause_s,
        )
        match decision:
            case policy.Unknown(title, details):
                lost = send_jobs.LOSE(
                    pending.key, time.time(), error_title=title, error_details=details
                )
                await self._journal.write(lost)
                await self._holding.ack(pending)
                return None
            case policy.Fail(title, code, details):
                await self._fail(pending, "send", title, code=code, details=details)
                return None
            case policy.Retry(delay_s):
                pending.attempts += 1
                return await self._again(pending, delay_s)
            case policy.Hold(delay_s):
                return await self._again(pending, delay_s)
            case policy.Slow(Scope.NUMBER):
                lane.slow_down()
            case policy.Slow(_):
                lane.back_off(pending.recipient)
            case policy.Pause(seconds, reason, reload_token):
                lane.pause(seconds, reason)
                if reload_token:
                    self._api.reload_token()
        return await self._again(pending)

    async def _again(self, pending: Pending, delay_s: float = 0.0) -> Again | None:
        """Not sent: back to ``queued``; the lane puts it first in its line (``done``)."""
        if not await self._journal.write(send_jobs.REQUEUE(pending.key, time.time())):
            await self._holding.ack(pending)  # settled meanwhile (the sweep): not ours
            return None
        return Again(delay_s)

    async def _fail(
        self,
        pending: Pending,
        stage: Stage,
        title: str,
        *,
        code: int | None = None,
        details: str | None = None,
        transition: send_jobs.Transition = send_jobs.FAIL,
    ) -> None:
        now = time.time()
        change = transition(
            pending.key, now, error_code=code, error_title=title, error_details=details
        )
        if await self._journal.write(change):
            event = failed_event(pending.job, stage, title, now, code=code, details=details)
            await self._events.publish([outgoing(event)])
            self._metrics.failed.labels(stage).inc()
            log.info(
                "send failed",
                extra={"key": pending.key, "stage": stage, "code": code, "title": title},
            )
        else:  # another holder has it, or it is done: its own event stands
            await self._republish(pending.key)
        await self._holding.ack(pending)

    async def _republish(self, key: str) -> None:
        record = await self._journal.record(key)
        if record is not None and (event := event_of_record(record, time.time())) is not None:
            await self._events.publish([outgoing(event)])


def refusal(job: Job, files_dir: Path | None, now: float) -> tuple[Stage, str] | None:
    """Why the job must not be sent at all, checked before it is marked."""
    expires_at = getattr(job, "expires_at", None)
    if expires_at is not None and now >= expires_at:
        return "expired", "expired before it could be sent"
    if isinstance(job, SendJob) and (file := local_file(job)) is not None:
        # Any system may publish jobs: only files under WAPIPE_SENDER_FILES_DIR may leave.
        if files_dir is None:
            return "invalid", "local files are not allowed: set WAPIPE_SENDER_FILES_DIR"
        resolved = file.path.resolve()
        if not resolved.is_relative_to(files_dir):
            return "invalid", f"{file.path} is not under WAPIPE_SENDER_FILES_DIR"
        if not resolved.is_file():
            return "invalid", f"{file.path}: no such file"
        return _beyond_limits(job, resolved, file.mime_type)
    return None


def _beyond_limits(job: SendJob, path: Path, mime_type: str) -> tuple[Stage, str] | None:
    """Meta's type and size limits for the message's kind, checked before an upload."""
    kind = job.message.__struct_config__.tag  # image, audio, video, document, sticker
    with path.open("rb") as head:
        animated = is_animated_webp(head.read(32))
    refused = check_media(str(kind), mime_type, path.stat().st_size, animated=animated)
    return None if refused is None else ("invalid", f"{path.name}: {refused.details}")


def message_body(job: SendJob, media_id: str | None = None) -> dict[str, Any]:
    """What ``POST /{phone_number_id}/messages`` carries for a job (the one place it is
    built): the message, addressed, and the callback data that traces its statuses back."""
    body = api_message(job, media_id=media_id)
    body["biz_opaque_callback_data"] = callback_data(job)
    return body


async def call(api: CloudApi, job: Job) -> SentMessage | None:
    if isinstance(job, MarkReadJob):
        await api.mark_read(job.phone_number_id, job.message_id, typing=job.typing)
        return None
    media_id = None
    if (file := local_file(job)) is not None:
        media_id = await api.upload_media(
            job.phone_number_id, file.path, file.mime_type, file.path.name
        )
    return await api.send_message(job.phone_number_id, message_body(job, media_id))
