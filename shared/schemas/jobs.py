"""Send jobs: what any system publishes on ``wa.outbound`` for wapipe to send. Versioned.

A job names its ``kind``: ``send`` (a message) or ``mark_read`` (blue ticks for an inbound
message; with ``typing`` the user also sees "typing…" for up to 25 s or until the reply: the
Cloud API shows typing only this way, so there is no job of its own for it). Routing key:
``send.<phone_number_id>`` (``routing_key``). ``idempotency_key`` makes a job at most once: the
same key published twice is sent once.

A send job addresses its customer by phone number (``to``) or by business-scoped user id
(``recipient``, a BSUID such as ``US.13491208655302741918``): exactly one of them; a job with
neither, both, or a malformed BSUID is refused (dead-lettered with the reason).

A send job's ``message`` is the Cloud API's own message object, as it follows ``"to"`` in a
``POST /{phone_number_id}/messages`` body: ``{"type": "text", "text": {"body": "Hello"}}``,
``{"type": "image", "image": {"link": "https://...", "caption": "..."}}`` and so on for every
kind the API sends (docs/cloudapi/sending.md), typed here with the API's limits (content.py,
interactive.py, template.py). One addition: an image, audio, video, document or sticker may name
a local ``file`` instead of an ``id`` or ``link``; the sender uploads it, then sends its id.

The published contract is the JSON Schema of ``Job`` in ``schemas/send-job.schema.json``
(``python -m shared.schemas.export`` writes it). Pure: the sender calls ``api_message`` for the
request body and ``local_file`` for what to upload first.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import Annotated, Any, Final

import msgspec
from msgspec import Meta

from wapipe.shared.schemas.content import (
    UPLOAD_SOURCES,
    Audio,
    Contact,
    Document,
    Image,
    JobStruct,
    Location,
    NonEmpty,
    Reaction,
    Sticker,
    Text,
    Video,
)
from wapipe.shared.schemas.interactive import Interactive
from wapipe.shared.schemas.template import Template

JOB_VERSION: Final = 1
CALLBACK_DATA_MAX: Final = 512

# Digits only: the id is a word of the routing key, where a dot would split it.
PhoneNumberId = Annotated[str, Meta(pattern=r"^[0-9]+$", description="the business number's id")]
# A business-scoped user id: an ISO 3166 alpha-2 country code, a dot, up to 128 letters and
# digits; a parent BSUID has ENT between (docs/cloudapi/usernames.md).
BSUID_PATTERN: Final = r"^[A-Z]{2}\.(ENT\.)?[A-Za-z0-9]{1,128}$"
Bsuid = Annotated[
    str,
    Meta(
        pattern=BSUID_PATTERN,
        description="a business-scoped user id (BSUID), e.g. US.13491208655302741918",
    ),
]
PhoneNumber = Annotated[
    str, Meta(min_length=1, description="the customer's phone number or wa_id, e.g. 16315551181")
]
IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=256)]

# --- the message: one Struct per type, holding the API's object under the type's name -----------


class TextMessage(JobStruct, frozen=True, kw_only=True, tag="text", tag_field="type"):
    text: Text


class ImageMessage(JobStruct, frozen=True, kw_only=True, tag="image", tag_field="type"):
    image: Annotated[Image, UPLOAD_SOURCES]


class AudioMessage(JobStruct, frozen=True, kw_only=True, tag="audio", tag_field="type"):
    audio: Annotated[Audio, UPLOAD_SOURCES]


class VideoMessage(JobStruct, frozen=True, kw_only=True, tag="video", tag_field="type"):
    video: Annotated[Video, UPLOAD_SOURCES]


class DocumentMessage(JobStruct, frozen=True, kw_only=True, tag="document", tag_field="type"):
    document: Annotated[Document, UPLOAD_SOURCES]


class StickerMessage(JobStruct, frozen=True, kw_only=True, tag="sticker", tag_field="type"):
    sticker: Annotated[Sticker, UPLOAD_SOURCES]


class LocationMessage(JobStruct, frozen=True, kw_only=True, tag="location", tag_field="type"):
    location: Location


class ContactsMessage(JobStruct, frozen=True, kw_only=True, tag="contacts", tag_field="type"):
    contacts: Annotated[tuple[Contact, ...], Meta(min_length=1)]


class InteractiveMessage(JobStruct, frozen=True, kw_only=True, tag="interactive", tag_field="type"):
    interactive: Interactive


class TemplateMessage(JobStruct, frozen=True, kw_only=True, tag="template", tag_field="type"):
    template: Template


class ReactionMessage(JobStruct, frozen=True, kw_only=True, tag="reaction", tag_field="type"):
    reaction: Reaction


Message = (
    TextMessage
    | ImageMessage
    | AudioMessage
    | VideoMessage
    | DocumentMessage
    | StickerMessage
    | LocationMessage
    | ContactsMessage
    | InteractiveMessage
    | TemplateMessage
    | ReactionMessage
)
MediaMessage = ImageMessage | AudioMessage | VideoMessage | DocumentMessage | StickerMessage


def message_type(message: Message) -> str:
    """The message's ``type`` ("text", "image", ...): its tag, not an attribute."""
    return str(message.__struct_config__.tag)


def text_message(body: str, *, preview_url: bool = False) -> TextMessage:
    """The most common message, without spelling out its two Structs."""
    return TextMessage(text=Text(body=body, preview_url=preview_url))


# --- the jobs ------------------------------------------------------------------------------------


class SendJob(
    JobStruct, frozen=True, kw_only=True, omit_defaults=False, tag="send", tag_field="kind"
):
    v: int = JOB_VERSION
    idempotency_key: IdempotencyKey
    phone_number_id: PhoneNumberId  # the business number to send from
    # The customer: exactly one of a phone number (``to``) or a BSUID (``recipient``).
    to: PhoneNumber | None = None
    recipient: Bsuid | None = None
    message: Message
    reply_to: NonEmpty | None = None  # the wamid this answers (sent as the message's context)
    # biz_opaque_callback_data, echoed on the message's statuses
    callback_data: Annotated[str, Meta(max_length=CALLBACK_DATA_MAX)] | None = None
    expires_at: float | None = None  # unix seconds; not sent after this
    metadata: dict[str, str] = msgspec.field(
        default_factory=dict
    )  # passed back in the outbound.* events

    def __post_init__(self) -> None:
        if (self.to is None) == (self.recipient is None):
            raise ValueError(
                "a send job names its customer once: to (a phone number) or recipient (a BSUID)"
            )
        if self.to is not None and is_bsuid(self.to):
            raise ValueError(f"to is a phone number; the BSUID {self.to} goes in recipient")
        if self.reply_to is not None and isinstance(self.message, ReactionMessage):
            raise ValueError("a reaction cannot reply to a message (it names its own)")


class MarkReadJob(
    JobStruct, frozen=True, kw_only=True, omit_defaults=False, tag="mark_read", tag_field="kind"
):
    """Mark an inbound message read (its blue ticks), and with ``typing`` show "typing…"."""

    v: int = JOB_VERSION
    idempotency_key: IdempotencyKey
    phone_number_id: PhoneNumberId
    message_id: NonEmpty  # the inbound wamid
    typing: bool = False


def is_bsuid(customer: str) -> bool:
    """Whether this customer id is a BSUID (else a phone number or wa_id)."""
    return re.fullmatch(BSUID_PATTERN, customer) is not None


def customer_of(job: SendJob) -> str:
    """The customer a send job addresses, as it names them (its pair-limit key)."""
    customer = job.to if job.to is not None else job.recipient
    assert customer is not None  # a job names exactly one (SendJob.__post_init__)
    return customer


def routing_key(phone_number_id: str) -> str:
    return f"send.{phone_number_id}"


Job = SendJob | MarkReadJob
job_decoder: Final[msgspec.json.Decoder[SendJob | MarkReadJob]] = msgspec.json.Decoder(Job)
job_encoder: Final = msgspec.json.Encoder()


def encode_job(job: Job) -> bytes:
    """The job as JSON, checked against the contract first: msgspec checks the ``Meta`` limits
    only when decoding, so a job built in Python is decoded once to catch what it breaks.
    Raises ``msgspec.ValidationError`` with the reason and the path."""
    body = job_encoder.encode(job)
    job_decoder.decode(body)
    return body


# --- what the sender does with a send job --------------------------------------------------------


class LocalFile(msgspec.Struct, frozen=True, kw_only=True):
    """A local file to upload before sending (``CloudApi.upload_media(..., path, mime_type,
    path.name)``), its id then given to ``api_message``."""

    path: Path
    mime_type: str


# What WhatsApp takes (docs/cloudapi/media.md), not the machine's own table, which varies.
_MIME_TYPES: Final = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
    ".3gp": "video/3gpp",
    ".aac": "audio/aac",
    ".amr": "audio/amr",
    ".mp3": "audio/mpeg",
    ".m4a": "audio/mp4",
    ".ogg": "audio/ogg",
    ".opus": "audio/ogg",
    ".pdf": "application/pdf",
    ".txt": "text/plain",
}
FALLBACK_MIME_TYPE: Final = "application/octet-stream"


def guess_mime_type(path: str) -> str:
    suffix = Path(path).suffix.lower()
    return _MIME_TYPES.get(suffix) or mimetypes.guess_type(path)[0] or FALLBACK_MIME_TYPE


def _media_of(message: Message) -> Image | Audio | Video | Document | Sticker | None:
    if isinstance(message, ImageMessage):
        return message.image
    if isinstance(message, AudioMessage):
        return message.audio
    if isinstance(message, VideoMessage):
        return message.video
    if isinstance(message, DocumentMessage):
        return message.document
    if isinstance(message, StickerMessage):
        return message.sticker
    return None


def local_file(job: SendJob) -> LocalFile | None:
    """The file to upload first, when the job's media is a local ``file``."""
    media = _media_of(job.message)
    if media is None or media.file is None:
        return None
    return LocalFile(
        path=Path(media.file), mime_type=media.mime_type or guess_mime_type(media.file)
    )


def api_message(job: SendJob, *, media_id: str | None = None) -> dict[str, Any]:
    """The body of ``POST /{phone_number_id}/messages``, but for ``messaging_product`` and
    ``biz_opaque_callback_data``, which the sender adds. ``media_id`` (the upload of
    ``local_file(job)``) stands in for a local file; a job with a file needs it."""
    # Meta's Messages API: "to" for a phone number, "recipient" for a BSUID (one of them only;
    # given both, Meta would take "to": docs/cloudapi/usernames.md).
    address = {"to": job.to} if job.to is not None else {"recipient": job.recipient}
    body: dict[str, Any] = {"recipient_type": "individual", **address}
    body.update(msgspec.json.decode(job_encoder.encode(job.message)))  # JSON's own types
    media = _media_of(job.message)
    if media is not None and media.file is not None:
        if media_id is None:
            raise ValueError(f"{job.idempotency_key}: upload {media.file} first: no media_id")
        kind = body["type"]
        uploaded = {k: v for k, v in body[kind].items() if k not in ("file", "mime_type")}
        body[kind] = {"id": media_id, **uploaded}
    elif media_id is not None:
        raise ValueError(f"{job.idempotency_key}: a media_id for a message with no local file")
    if job.reply_to is not None:
        body["context"] = {"message_id": job.reply_to}
    return body
