"""One send: checked, marked ``sending``, given a slot, called, and its answer recorded.

    refusal? ──yes──> failed (never sent)
    mark sending (only from queued: of two holders, one sends) ──no──> not ours: ack
    slot (paced sends) ──none: paused or stopping──> back to its line, unsent
    call ──answer──> accepted: record, outbound.accepted, ack
         └─error──> decide (workers/sender/policy.py): back to its line, failed, or unknown

Every path ends in an ack, a give-back or a record; the lane hears ``done`` whatever happens.
An event follows only a state change that happened; otherwise the record's own is published.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shared.cloudapi.client import CloudApi, SentMessage
from shared.cloudapi.errors import CloudApiError, Scope
from shared.media_limits import check_media, is_animated_webp
from shared.schemas.jobs import Job, MarkReadJob, SendJob, api_message, local_file
from shared.schemas.outbound import Stage
from shared.storage import send_jobs
from shared.storage.messages import outbound_row
from workers.sender import policy
from workers.sender.events import (
    accepted_event,
    callback_data,
    event_of_record,
    failed_event,
    outgoing,
)
from workers.sender.held import Pending
from workers.sender.journal import until_stored
from workers.sender.lane import Lane

if TYPE_CHECKING:
    from workers.sender.core import Sender

log = logging.getLogger(__name__)


class _Turn:
    """A paced send's share of its number's throughput: counted ``ahead`` until it leaves (or
    ends), then holding a slot until a second after its answer (``Lane.release``)."""

    def __init__(self, lane: Lane, paced: bool) -> None:
        self.lane = lane
        self.ahead = paced
        self.slot = False

    async def take(self) -> bool:
        """Wait for a slot; False if the number was paused or the sender is stopping."""
        self.slot = await self.lane.slot()
        self.ahead = False
        self.lane.left()
        return self.slot

    def answered(self, at: float) -> None:
        if self.slot:
            self.slot = False
            self.lane.release(at)

    def end(self) -> None:
        if self.ahead:
            self.lane.left()
        # Unanswered (an error, cancelled): it may have reached Meta as late as now.
        self.answered(self.lane.clock())


async def send(sender: Sender, lane: Lane, pending: Pending) -> None:
    turn = _Turn(lane, pending.paced)
    try:
        why = refusal(pending.job, sender.files_dir, time.time())
        why = why or await sender.templates.refusal(pending.job)
        if why is not None:
            stage, reason = why
            await fail(sender, pending, stage, reason, transition=send_jobs.REFUSE)
        elif not await sender.journal.mark_sending(pending.key):
            # Sent or being sent by another holder (a replica that took the shard over).
            await sender.ack(pending)
        elif pending.paced and not await turn.take():
            await again(sender, lane, pending)  # paused or stopping meanwhile: back, unsent
        else:
            await _call(sender, lane, pending, turn)
    except asyncio.CancelledError:
        raise
    except Exception:
        # A record or an event that cannot be written, or a bug: hand the job back to the
        # queue rather than hold it forever (redelivered, its record decides; the delivery
        # limit ends a loop in the dead-letter queue).
        log.exception("send failed unexpectedly", extra={"key": pending.key})
        await sender.give_back(pending)
    finally:
        turn.end()
        lane.done(pending.recipient)


async def _call(sender: Sender, lane: Lane, pending: Pending, turn: _Turn) -> None:
    try:
        sent = await call(sender.api, pending.job)
    except CloudApiError as error:
        answered_at = lane.clock()
        # Acted on before its slot frees: after a 130429 the number is blocked first.
        await refused(sender, lane, pending, error)
        turn.answered(answered_at)
        return
    answered_at = lane.clock()
    turn.answered(answered_at)  # the record need not hold the slot: the answer is in
    await accepted(sender, lane, pending, sent, answered_at)


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


async def call(api: CloudApi, job: Job) -> SentMessage | None:
    if isinstance(job, MarkReadJob):
        await api.mark_read(job.phone_number_id, job.message_id, typing=job.typing)
        return None
    media_id = None
    if (file := local_file(job)) is not None:
        media_id = await api.upload_media(
            job.phone_number_id, file.path, file.mime_type, file.path.name
        )
    body = api_message(job, media_id=media_id)
    body["biz_opaque_callback_data"] = callback_data(job)
    return await api.send_message(job.phone_number_id, body)


async def accepted(
    sender: Sender, lane: Lane, pending: Pending, sent: SentMessage | None, answered_at: float
) -> None:
    job, now = pending.job, time.time()
    if isinstance(job, SendJob) and sent is not None:
        lane.sent(pending.recipient, answered_at)
        change = send_jobs.ACCEPT(pending.key, now, wamid=sent.wamid)
        if await sender.journal.write(change, outbound_row(job, sent.wamid, sent.wa_id, now)):
            await sender.events.publish([outgoing(accepted_event(job, sent, now))])
            sender.metrics.accepted.labels(job.phone_number_id).inc()
            log.info("sent", extra={"key": pending.key, "wamid": sent.wamid})
        else:  # settled meanwhile (a failed status came first): its own event stands
            await republish(sender, pending.key)
    else:  # a read receipt: done, no event
        lane.sent(pending.recipient, None)
        await sender.journal.write(send_jobs.ACCEPT(pending.key, now))
    await sender.ack(pending)


async def refused(sender: Sender, lane: Lane, pending: Pending, error: CloudApiError) -> None:
    sender.metrics.refused.labels(str(error.code)).inc()
    decision = policy.decide(
        error,
        pending.job,
        pending.attempts,
        lane.pause_strikes,
        max_attempts=sender.settings.sender_max_attempts,
        auth_pause_s=sender.settings.sender_pause_s,
    )
    match decision:
        case policy.Unknown(title, details):
            lost = send_jobs.LOSE(
                pending.key, time.time(), error_title=title, error_details=details
            )
            await sender.journal.write(lost)
            await sender.ack(pending)
        case policy.Fail(title, code, details):
            await fail(sender, pending, "send", title, code=code, details=details)
        case policy.Retry(delay_s):
            pending.attempts += 1
            await again(sender, lane, pending, delay_s)
        case policy.Hold(delay_s):
            await again(sender, lane, pending, delay_s)
        case policy.Slow(Scope.NUMBER):
            lane.slow_down()
            await again(sender, lane, pending)
        case policy.Slow(_):
            lane.back_off(pending.recipient)
            await again(sender, lane, pending)
        case policy.Pause(seconds, reason, reload_token):
            lane.pause(seconds, reason)
            if reload_token:
                sender.api.reload_token()
            await again(sender, lane, pending)


async def again(sender: Sender, lane: Lane, pending: Pending, delay_s: float = 0.0) -> None:
    """Not sent: back to ``queued`` and to the front of its recipient's line."""
    if not await sender.journal.write(send_jobs.REQUEUE(pending.key, time.time())):
        await sender.ack(pending)  # settled meanwhile (the sweep): not ours
        return
    if delay_s:
        lane.hold(pending.recipient, delay_s)
    lane.add(pending, first=True)


async def fail(
    sender: Sender,
    pending: Pending,
    stage: Stage,
    title: str,
    *,
    code: int | None = None,
    details: str | None = None,
    transition: send_jobs.Transition = send_jobs.FAIL,
) -> None:
    now = time.time()
    change = transition(pending.key, now, error_code=code, error_title=title, error_details=details)
    if await sender.journal.write(change):
        event = failed_event(pending.job, stage, title, now, code=code, details=details)
        await sender.events.publish([outgoing(event)])
        sender.metrics.failed.labels(stage).inc()
        log.info(
            "send failed",
            extra={"key": pending.key, "stage": stage, "code": code, "title": title},
        )
    else:  # another holder has it, or it is done: its own event stands
        await republish(sender, pending.key)
    await sender.ack(pending)


async def republish(sender: Sender, key: str) -> None:
    found = await until_stored(sender.engine, lambda c: send_jobs.records(c, [key]))
    record = found.get(key)
    if record is not None and (event := event_of_record(record, time.time())) is not None:
        await sender.events.publish([outgoing(event)])
