"""The media worker: ``wa.media`` -> each inbound media's bytes fetched, verified, stored.

For each media message (image, audio, video, document, sticker): unless its media id is stored
already, look the id up (a download URL that expires within minutes), stream the bytes into the
blob store (shared/blobs.py: never whole in memory; size capped; the sha256 the webhook gave
checked), record the media (``media``: state, type, file name, size, hash, location) and publish
``media.stored`` on ``wa.events``. Up to ``WAPIPE_MEDIA_CONCURRENCY`` downloads run at once.

A failed try (an expired or refused URL, a broken download, a digest that does not match, a
transient error) is tried again with a fresh look-up, after a back-off, up to
``WAPIPE_MEDIA_ATTEMPTS`` tries. Then the media is recorded failed with the reason, published as
``media.failed``, and its message dead-lettered (``wapipe dlq replay`` tries again). An id Meta
does not know fails at once. A refused token is no fault of the media: the worker waits
(``Unavailable``) until it is fixed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import random
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Final

import msgspec
from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncEngine

from wapipe.shared import topology
from wapipe.shared.amqp import EventPublisher, Outgoing
from wapipe.shared.blobs import BlobError, BlobStore, StoreUnavailable, open_store
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.cloudapi.errors import AuthError, CloudApiError, PermanentError
from wapipe.shared.schemas.events import WebhookEvent, event_decoder
from wapipe.shared.schemas.webhook import Media, Message
from wapipe.shared.storage.media import FAILED, STORED, MediaRow, record_media, stored_media
from wapipe.workers.main import Resources, WorkerKind
from wapipe.workers.retry import Reject, RetryPolicy, Unavailable
from wapipe.workers.runtime import Handler, Outcome
from wapipe.workers.storage import Transactions

QUEUE: Final = topology.MEDIA_QUEUE
MEDIA_STORED: Final = "media.stored"
MEDIA_FAILED: Final = "media.failed"

_message_decoder: Final = msgspec.json.Decoder(Message)
_encoder: Final = msgspec.json.Encoder()


@dataclass(frozen=True)
class MediaEvent:
    event: WebhookEvent
    message: Message
    media: Media


def decode(body: bytes) -> MediaEvent:
    try:
        event = event_decoder.decode(body)
        message = _message_decoder.decode(event.payload)
    except msgspec.DecodeError as exc:
        raise Reject(f"undecodable media event: {exc}") from None
    media = getattr(message, message.type, None)
    if not isinstance(media, Media):
        raise Reject(f"not a media message: type {message.type!r}")
    return MediaEvent(event, message, media)


def hex_digest(webhook_sha256: str | None) -> str | None:
    """The webhook's digest (base64 of the 32
    bytes, docs/cloudapi/media.md) as hex; None if unusable."""
    if not webhook_sha256:
        return None
    try:
        raw = base64.b64decode(webhook_sha256, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 32 else None


class UnknownMedia(Exception):
    """The look-up itself was refused for good: the id is unknown, or no longer served."""


class MediaFailed(Exception):
    """Some media of a batch failed for good: each is dead-lettered on its own next."""


class MediaHandler:
    def __init__(
        self,
        engine: AsyncEngine,
        api: CloudApi,
        store: BlobStore,
        publisher: EventPublisher,
        *,
        concurrency: int,
        attempts: RetryPolicy,
        max_bytes: int,
    ) -> None:
        self._transactions = Transactions(engine)
        self._api = api
        self._store = store
        self._publisher = publisher
        self._slots = asyncio.Semaphore(concurrency)
        self._policy = attempts
        self._max_bytes = max_bytes
        self._failed_now: dict[str, str] = {}  # media id -> reason, for the one-by-one pass

    async def __call__(self, batch: Sequence[AbstractIncomingMessage]) -> Outcome:
        items = [decode(message.body) for message in batch]
        if len(items) == 1 and (reason := self._failed_now.get(items[0].media.id)):
            raise Reject(reason)  # failed for good a moment ago, in its batch
        self._failed_now.clear()  # a new batch: the last one's pass message by message is over
        done = await self._transactions.run(
            partial(stored_media, media_ids={item.media.id for item in items})
        )
        todo = {item.media.id: item for item in items if item.media.id not in done}
        rows = await self._fetch_all(list(todo.values()))
        await self._transactions.run(partial(record_media, rows=rows))
        # The stored ones of before too, again: had a crash come between their commit and their
        # event, this is their event (same key: followers drop repeats).
        await self._publisher.publish([_event(row) for row in [*rows, *done.values()]])
        failed = {row.media_id: row.error or "failed" for row in rows if row.state == FAILED}
        if failed:
            if len(items) == 1:
                raise Reject(next(iter(failed.values())))
            self._failed_now.update(failed)
            raise MediaFailed(f"{len(failed)} media failed: {', '.join(sorted(failed))}")
        stored = sum(1 for row in rows if row.state == STORED)
        return Outcome(stored=stored, duplicates=len(items) - len(rows))

    async def close(self) -> None:
        await self._transactions.close()

    async def _fetch_all(self, items: list[MediaEvent]) -> list[MediaRow]:
        outcomes = await asyncio.gather(
            *(self._fetch(item) for item in items), return_exceptions=True
        )
        for outcome in outcomes:  # a refused token or a failing store first: nobody's fault
            if isinstance(outcome, Unavailable):
                raise outcome
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        return [outcome for outcome in outcomes if isinstance(outcome, MediaRow)]

    async def _fetch(self, item: MediaEvent) -> MediaRow:
        """Try until stored or out of tries; the row to record either way."""
        reason = ""
        attempt = 0
        for attempt in range(1, self._policy.max_attempts + 1):
            try:
                async with self._slots:
                    return await self._fetch_once(item, attempt)
            except UnknownMedia as exc:
                reason = str(exc)
                break  # Meta does not know the id: no new URL will help
            except StoreUnavailable as exc:
                raise Unavailable(str(exc)) from exc
            except CloudApiError as exc:  # the download: an expired or refused URL, a 5xx, a reset
                reason = f"{type(exc).__name__}: {exc}"
            except BlobError as exc:
                reason = str(exc)
            if attempt < self._policy.max_attempts:
                await asyncio.sleep(self._policy.backoff_s(attempt, _RNG))  # the back-off
        return _row(item, FAILED, attempt, error=reason)

    async def _fetch_once(self, item: MediaEvent, attempt: int) -> MediaRow:
        try:
            info = await self._api.media_info(item.media.id)  # a fresh URL every try
        except AuthError as exc:  # the token, not the media: wait until it is fixed
            raise Unavailable(f"the access token was refused: {exc}") from exc
        except PermanentError as exc:
            raise UnknownMedia(f"look-up refused: {exc}") from exc
        expected = hex_digest(item.media.sha256) or info.sha256
        # Closed however put() ends, so the connection goes back to the pool at once.
        async with contextlib.aclosing(self._api.download(info.url)) as chunks:
            blob = await self._store.put(
                chunks, expected_sha256=expected, max_bytes=self._max_bytes
            )
        return _row(
            item,
            STORED,
            attempt,
            sha256=blob.sha256,
            size_bytes=blob.size_bytes,
            location=blob.location,
            mime_type=info.mime_type,
        )


_RNG: Final = random.Random()  # noqa: S311 - jitter, not secrecy


def _row(item: MediaEvent, state: str, attempts: int, **found: object) -> MediaRow:
    return msgspec.convert(
        {
            "media_id": item.media.id,
            "wamid": item.message.id,
            "state": state,
            "mime_type": item.media.mime_type,
            "file_name": item.media.filename,
            "sha256": None,
            "size_bytes": None,
            "location": None,
            "error": None,
            "attempts": attempts,
            "updated_at": time.time(),
            **{key: value for key, value in found.items() if value is not None},
        },
        MediaRow,
    )


def _event(row: MediaRow) -> Outgoing:
    stored = row.state == STORED
    return Outgoing(
        topology.EVENTS_EXCHANGE,
        MEDIA_STORED if stored else MEDIA_FAILED,
        f"media:{row.media_id}:{row.state}",
        _encoder.encode(row),
        mandatory=False,
    )


@asynccontextmanager
async def _media_handler(resources: Resources) -> AsyncIterator[Handler]:
    settings = resources.settings
    async with (
        CloudApi(GraphConfig.from_settings(settings)) as api,
        open_store(settings.media_dir) as store,
    ):
        handler = MediaHandler(
            resources.engine,
            api,
            store,
            resources.events,
            concurrency=settings.media_concurrency,
            attempts=RetryPolicy(
                max_attempts=settings.media_attempts,
                base_delay_s=settings.worker_retry_base_s,
                max_delay_s=settings.worker_retry_max_s,
            ),
            max_bytes=settings.media_max_bytes,
        )
        try:
            yield handler
        finally:
            await handler.close()


KIND: Final = WorkerKind("media", QUEUE, metrics_port=9104, handler=_media_handler)
