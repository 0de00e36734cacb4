"""The objects of a send job's message: text, media, location, contacts, reaction.

Each is the Cloud API's own object, field for field (docs/cloudapi/sending.md), with its
documented limits as ``msgspec.Meta`` constraints, so decoding and the published JSON Schema
refuse the same jobs; rules across fields live in ``__post_init__`` (msgspec reports its
ValueError as a ValidationError with the path). One addition: a top-level media may name a local
``file`` (with an optional ``mime_type``), which the sender uploads first.
Interactive messages are in interactive.py, templates in template.py.
"""

from __future__ import annotations

from typing import Annotated, Final

import msgspec
from msgspec import Meta

TEXT_BODY_MAX: Final = 4096
CAPTION_MAX: Final = 1024

NonEmpty = Annotated[str, Meta(min_length=1)]
Link = Annotated[str, Meta(pattern=r"^https?://[^\s/]+", description="an http(s) URL")]
MediaId = Annotated[str, Meta(min_length=1, description="a media id from an upload")]
LocalPath = Annotated[
    str,
    Meta(
        pattern=r"^/",
        description="an absolute path on the sender's machine: the sender uploads it first",
    ),
]
MimeType = Annotated[str, Meta(pattern=r"^[\w.+-]+/[\w.+-]+", examples=["image/jpeg"])]
Caption = Annotated[str, Meta(max_length=CAPTION_MAX)]
Latitude = Annotated[float, Meta(ge=-90, le=90)]
Longitude = Annotated[float, Meta(ge=-180, le=180)]


class JobStruct(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """Shared config: immutable, strict (a misspelt field is an error, not a field dropped),
    unset fields omitted on encode so the encoded object is the API's own.

    Subclasses repeat ``frozen=True`` for mypy (msgspec issue #657) and ``kw_only=True`` because
    msgspec applies it only to the fields of the class that declares it."""


# --- text ----------------------------------------------------------------------------------------


class Text(JobStruct, frozen=True, kw_only=True):
    body: Annotated[str, Meta(min_length=1, max_length=TEXT_BODY_MAX)]
    preview_url: bool = False  # render a preview of the first http(s) URL in the body


# --- media ---------------------------------------------------------------------------------------


def _one_source(sources: dict[str, object]) -> None:
    given = [name for name, value in sources.items() if value is not None]
    if len(given) != 1:
        raise ValueError(f"give exactly one of {', '.join(sources)}, not {len(given)}")


class Media(JobStruct, frozen=True, kw_only=True):
    """A media in a header or a template parameter: an uploaded ``id`` or a ``link``."""

    id: MediaId | None = None
    link: Link | None = None

    def __post_init__(self) -> None:
        _one_source({"id": self.id, "link": self.link})


class _Upload(JobStruct, frozen=True, kw_only=True):
    """A message's media: an uploaded ``id``, a ``link`` Meta fetches, or a local ``file``."""

    id: MediaId | None = None
    link: Link | None = None
    file: LocalPath | None = None
    mime_type: MimeType | None = None  # of the file; guessed from its extension when unset

    def __post_init__(self) -> None:
        _one_source({"id": self.id, "link": self.link, "file": self.file})
        if self.mime_type is not None and self.file is None:
            raise ValueError("mime_type goes with a file only")


def exactly_one_of(*names: str) -> Meta:
    """The JSON Schema's spelling of a ``__post_init__`` rule: exactly one of these fields."""
    return Meta(extra_json_schema={"oneOf": [{"required": [name]} for name in names]})


MediaRef = Annotated[Media, exactly_one_of("id", "link")]


class Image(_Upload, frozen=True, kw_only=True):
    caption: Caption | None = None


class Video(_Upload, frozen=True, kw_only=True):
    caption: Caption | None = None


class Document(_Upload, frozen=True, kw_only=True):
    caption: Caption | None = None
    filename: NonEmpty | None = None  # its extension decides how WhatsApp shows it


class Audio(_Upload, frozen=True, kw_only=True):
    voice: bool | None = None  # a voice note (OGG/OPUS only)


class Sticker(_Upload, frozen=True, kw_only=True):
    pass


UPLOAD_SOURCES: Final = exactly_one_of("id", "link", "file")


# --- location, contacts, reaction ----------------------------------------------------------------


class Location(JobStruct, frozen=True, kw_only=True):
    latitude: Latitude
    longitude: Longitude
    name: str | None = None
    address: str | None = None


class ContactName(JobStruct, frozen=True, kw_only=True):
    formatted_name: NonEmpty
    first_name: str | None = None
    last_name: str | None = None
    middle_name: str | None = None
    suffix: str | None = None
    prefix: str | None = None


class ContactPhone(JobStruct, frozen=True, kw_only=True):
    phone: str | None = None
    type: str | None = None  # e.g. CELL, MAIN, HOME, WORK
    wa_id: str | None = None


class ContactEmail(JobStruct, frozen=True, kw_only=True):
    email: str | None = None
    type: str | None = None


class ContactAddress(JobStruct, frozen=True, kw_only=True):
    street: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    country_code: str | None = None
    type: str | None = None


class ContactOrg(JobStruct, frozen=True, kw_only=True):
    company: str | None = None
    department: str | None = None
    title: str | None = None


class ContactUrl(JobStruct, frozen=True, kw_only=True):
    url: str | None = None
    type: str | None = None


class Contact(JobStruct, frozen=True, kw_only=True):
    name: ContactName
    phones: tuple[ContactPhone, ...] = ()
    emails: tuple[ContactEmail, ...] = ()
    addresses: tuple[ContactAddress, ...] = ()
    org: ContactOrg | None = None
    urls: tuple[ContactUrl, ...] = ()
    birthday: Annotated[str, Meta(pattern=r"^\d{4}-\d{2}-\d{2}$")] | None = None


class Reaction(JobStruct, frozen=True, kw_only=True):
    message_id: NonEmpty  # the wamid reacted to
    emoji: str  # one emoji; "" removes the reaction
