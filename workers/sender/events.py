"""What the sender tells the world: ``outbound.accepted`` and ``outbound.failed`` on wa.events.

Pure: a job and what became of it in, an event and its message out. Every send carries
``biz_opaque_callback_data`` (the job's own, or a marker naming it), so that any status Meta
sends for it can be traced back to its job (workers/sender/settle.py).
"""

from __future__ import annotations

import hashlib
from typing import Final

import msgspec

from wapipe.shared import topology
from wapipe.shared.amqp import Outgoing
from wapipe.shared.cloudapi.client import SentMessage
from wapipe.shared.cloudapi.errors import CloudApiError
from wapipe.shared.schemas import outbound
from wapipe.shared.schemas.jobs import Job, SendJob, job_decoder
from wapipe.shared.schemas.outbound import OutboundAccepted, OutboundFailed, Stage
from wapipe.shared.storage import send_jobs
from wapipe.shared.storage.send_jobs import JobRecord

CALLBACK_MAX: Final = 512  # biz_opaque_callback_data's limit
MARKER: Final = "wapipe:"

_encoder: Final = msgspec.json.Encoder()


def callback_data(job: SendJob) -> str:
    """What the send carries as biz_opaque_callback_data: the job's own, else a marker naming
    the job, so that a status can always be traced back to it."""
    if job.callback_data is not None:
        return job.callback_data
    marker = MARKER + job.idempotency_key
    if len(marker) > CALLBACK_MAX:
        marker = MARKER + hashlib.sha256(job.idempotency_key.encode()).hexdigest()
    return marker


def title(error: CloudApiError) -> str:
    return error.title or error.message or f"error {error.code}"


def accepted_event(job: SendJob, sent: SentMessage, at: float) -> OutboundAccepted:
    return OutboundAccepted(
        key=job.idempotency_key,
        phone_number_id=job.phone_number_id,
        to=job.to,
        recipient=job.recipient,
        wamid=sent.wamid,
        wa_id=sent.wa_id,
        message_status=sent.message_status,
        callback_data=callback_data(job),
        metadata=job.metadata,
        at=at,
    )


def failed_event(
    job: Job | None,
    stage: Stage,
    title: str,
    at: float,
    *,
    code: int | None = None,
    details: str | None = None,
    wamid: str | None = None,
    key: str = "",
) -> OutboundFailed:
    send = job if isinstance(job, SendJob) else None
    return OutboundFailed(
        key=job.idempotency_key if job is not None else key,
        phone_number_id=job.phone_number_id if job is not None else None,
        to=send.to if send is not None else None,
        recipient=send.recipient if send is not None else None,
        stage=stage,
        code=code,
        title=title,
        details=details,
        wamid=wamid,
        callback_data=callback_data(send) if send is not None else None,
        metadata=send.metadata if send is not None else {},
        at=at,
    )


def outgoing(event: OutboundAccepted | OutboundFailed) -> Outgoing:
    name = outbound.ACCEPTED if isinstance(event, OutboundAccepted) else outbound.FAILED
    return Outgoing(
        topology.EVENTS_EXCHANGE,
        name,
        f"{event.key}:{name.rpartition('.')[2]}",
        _encoder.encode(event),
        mandatory=False,  # followed or not, it ends somewhere (wa.sink)
    )


def event_of_record(record: JobRecord, at: float) -> OutboundAccepted | OutboundFailed | None:
    """The event of a job done already (published again when the job comes again)."""
    job = job_decoder.decode(record.job)
    if record.state == send_jobs.ACCEPTED and isinstance(job, SendJob) and record.wamid:
        return accepted_event(job, SentMessage(record.wamid, None, None), at)
    if record.state == send_jobs.FAILED:
        return failed_event(
            job,
            "status" if record.wamid else "send",
            record.error_title or "failed",
            at,
            code=record.error_code,
            details=record.error_details,
            wamid=record.wamid,
        )
    return None
