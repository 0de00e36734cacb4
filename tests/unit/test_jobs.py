"""The send-job contract: every kind decodes, the documented limits refuse with their reason (in
the decoder and in the published JSON Schema alike), and ``api_message`` is the API's body."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import msgspec
import pytest

from tests.send_examples import LINK, MEDIA_KINDS, every_kind, media_message, reaction
from wapipe.shared.schemas.content import Image, Text
from wapipe.shared.schemas.export import ROOT
from wapipe.shared.schemas.jobs import (
    ImageMessage,
    LocalFile,
    MarkReadJob,
    SendJob,
    TextMessage,
    api_message,
    encode_job,
    guess_mime_type,
    job_decoder,
    local_file,
    message_type,
    text_message,
)

NUMBER = "109876000001"
TO = "16315551181"
SCHEMA = json.loads((ROOT / "schemas" / "send-job.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def send_job(message: Any, **envelope: Any) -> dict[str, Any]:
    job = {"kind": "send", "idempotency_key": "order-42", "phone_number_id": NUMBER, "to": TO}
    return {**job, "message": message, **envelope}


def decode(job: dict[str, Any]) -> SendJob | MarkReadJob:
    return job_decoder.decode(json.dumps(job))


def refusal(job: dict[str, Any]) -> str:
    with pytest.raises(msgspec.ValidationError) as raised:
        decode(job)
    return str(raised.value)


EVERY_KIND = {
    **every_kind({"id": "4490709327384033"}, reaction_to="wamid.HBgLMTYzMTU1NTExODEVAgARGBI"),
    **{f"{kind}-link": media_message(kind, {"link": LINK}) for kind in MEDIA_KINDS},
}


@pytest.mark.parametrize("name", EVERY_KIND)
def test_every_kind_decodes_and_becomes_the_apis_own_body(name: str) -> None:
    message = EVERY_KIND[name]
    job = decode(send_job(message))
    assert isinstance(job, SendJob)
    assert api_message(job) == {"recipient_type": "individual", "to": TO, **message}
    assert not list(VALIDATOR.iter_errors(send_job(message)))


def test_a_job_keeps_every_envelope_field_through_json() -> None:
    job = decode(
        send_job(
            {"type": "text", "text": {"body": "hi"}},
            reply_to="wamid.IN",
            callback_data="order:42",
            expires_at=1_900_000_000.5,
            metadata={"order": "42"},
        )
    )
    assert isinstance(job, SendJob)
    assert job_decoder.decode(encode_job(job)) == job
    assert (job.callback_data, job.metadata, job.expires_at) == (
        "order:42",
        {"order": "42"},
        1.9e9 + 0.5,
    )


def test_a_reply_carries_its_context() -> None:
    job = SendJob(
        idempotency_key="k",
        phone_number_id=NUMBER,
        to=TO,
        message=text_message("hi"),
        reply_to="wamid.IN",
    )
    assert api_message(job) == {
        "recipient_type": "individual",
        "to": TO,
        "type": "text",
        "text": {"body": "hi"},
        "context": {"message_id": "wamid.IN"},
    }


def test_a_preview_is_sent_only_when_asked() -> None:
    job = SendJob(
        idempotency_key="k",
        phone_number_id=NUMBER,
        to=TO,
        message=text_message("a", preview_url=True),
    )
    assert api_message(job)["text"] == {"body": "a", "preview_url": True}


def test_mark_read_with_typing_decodes() -> None:
    job = decode(
        {
            "kind": "mark_read",
            "idempotency_key": "r",
            "phone_number_id": NUMBER,
            "message_id": "wamid.IN",
            "typing": True,
        }
    )
    assert job == MarkReadJob(
        idempotency_key="r", phone_number_id=NUMBER, message_id="wamid.IN", typing=True
    )


# --- local files ---------------------------------------------------------------------------------


def test_a_local_file_is_named_for_upload_and_replaced_by_its_media_id() -> None:
    job = decode(send_job(media_message("document", {"file": "/srv/files/prices.pdf"})))
    assert isinstance(job, SendJob)
    assert local_file(job) == LocalFile(
        path=Path("/srv/files/prices.pdf"), mime_type="application/pdf"
    )
    assert api_message(job, media_id="555")["document"] == {
        "id": "555",
        "caption": "The price list",
        "filename": "prices.pdf",
    }


def test_a_local_files_mime_type_may_be_given() -> None:
    job = decode(
        send_job(
            {
                "type": "audio",
                "audio": {"file": "/srv/a.bin", "mime_type": "audio/ogg", "voice": True},
            }
        )
    )
    assert isinstance(job, SendJob)
    assert local_file(job) == LocalFile(path=Path("/srv/a.bin"), mime_type="audio/ogg")
    assert api_message(job, media_id="9")["audio"] == {"id": "9", "voice": True}


@pytest.mark.parametrize(
    ("name", "mime_type"),
    [
        ("a.JPG", "image/jpeg"),
        ("b.webp", "image/webp"),
        ("c.opus", "audio/ogg"),
        ("d.mp4", "video/mp4"),
        ("e.unknownext", "application/octet-stream"),
    ],
)
def test_mime_types_are_guessed_from_the_extension(name: str, mime_type: str) -> None:
    assert guess_mime_type(f"/x/{name}") == mime_type


def test_a_job_without_a_local_file_has_nothing_to_upload() -> None:
    job = decode(send_job(media_message("image", {"link": LINK})))
    assert isinstance(job, SendJob)
    assert local_file(job) is None
    with pytest.raises(ValueError, match="no local file"):
        api_message(job, media_id="1")


def test_a_local_file_needs_its_media_id_before_sending() -> None:
    job = decode(send_job(media_message("image", {"file": "/x/a.jpg"})))
    assert isinstance(job, SendJob)
    with pytest.raises(ValueError, match=r"upload /x/a\.jpg first"):
        api_message(job)


# --- refusals ------------------------------------------------------------------------------------

_BUTTON = {"type": "reply", "reply": {"id": "a", "title": "A"}}


def _buttons(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "interactive",
        "interactive": {
            "type": "button",
            "body": {"text": "?"},
            "action": {"buttons": list(buttons)},
        },
    }


def _list(rows: int, sections: int = 1, titled: bool = True) -> dict[str, Any]:
    section_rows = [{"id": f"r{i}", "title": f"Row {i}"} for i in range(rows)]
    return {
        "type": "interactive",
        "interactive": {
            "type": "list",
            "body": {"text": "Pick"},
            "action": {
                "button": "Open",
                "sections": [
                    {**({"title": f"S{s}"} if titled else {}), "rows": section_rows}
                    for s in range(sections)
                ],
            },
        },
    }


# (a message, the reason msgspec gives, whether the JSON Schema refuses it too)
REFUSED = {
    "text too long": (
        {"type": "text", "text": {"body": "x" * 4097}},
        "length <= 4096 - at `$.message.text.body`",
        True,
    ),
    "empty text": (
        {"type": "text", "text": {"body": ""}},
        "length >= 1 - at `$.message.text.body`",
        True,
    ),
    "unknown type": (
        {"type": "poll", "poll": {}},
        "Invalid value 'poll' - at `$.message.type`",
        True,
    ),
    "misspelt field": (
        {"type": "text", "text": {"body": "a", "preview": True}},
        "unknown field `preview`",
        True,
    ),
    "caption too long": (
        {"type": "image", "image": {"link": LINK, "caption": "c" * 1025}},
        "length <= 1024 - at `$.message.image.caption`",
        True,
    ),
    "no media source": (
        {"type": "image", "image": {"caption": "c"}},
        "give exactly one of id, link, file, not 0 - at `$.message.image`",
        True,
    ),
    "two media sources": (
        {"type": "video", "video": {"id": "1", "link": LINK}},
        "give exactly one of id, link, file, not 2",
        True,
    ),
    "caption on audio": (
        {"type": "audio", "audio": {"id": "1", "caption": "c"}},
        "unknown field `caption`",
        True,
    ),
    "relative file": (
        {"type": "image", "image": {"file": "a.jpg"}},
        "matching regex '^/' - at `$.message.image.file`",
        True,
    ),
    "mime type without a file": (
        {"type": "image", "image": {"id": "1", "mime_type": "image/png"}},
        "mime_type goes with a file only",
        False,
    ),
    "link not http": (
        {"type": "image", "image": {"link": "ftp://x/a.jpg"}},
        "matching regex",
        True,
    ),
    "latitude out of range": (
        {"type": "location", "location": {"latitude": 91, "longitude": 0}},
        "<= 90.0 - at `$.message.location.latitude`",
        True,
    ),
    "no contacts": (
        {"type": "contacts", "contacts": []},
        "length >= 1 - at `$.message.contacts`",
        True,
    ),
    "four buttons": (
        _buttons(
            *[{"type": "reply", "reply": {"id": f"b{i}", "title": f"B{i}"}} for i in range(4)]
        ),
        "length <= 3 - at `$.message.interactive.action.buttons`",
        True,
    ),
    "button title too long": (
        _buttons({"type": "reply", "reply": {"id": "a", "title": "t" * 21}}),
        "length <= 20",
        True,
    ),
    "same button titles": (
        _buttons(_BUTTON, {"type": "reply", "reply": {"id": "b", "title": "A"}}),
        "reply buttons need titles of their own",
        False,
    ),
    "button id with spaces": (
        _buttons({"type": "reply", "reply": {"id": " a", "title": "A"}}),
        "matching regex",
        True,
    ),
    "eleven rows": (
        _list(rows=11),
        "length <= 10 - at `$.message.interactive.action.sections[0].rows`",
        True,
    ),
    "eleven rows in sections": (
        _list(rows=6, sections=2),
        "the sections hold 12 rows, more than 10",
        False,
    ),
    "untitled sections": (
        _list(rows=1, sections=2, titled=False),
        "every section needs a title",
        False,
    ),
    "media header on a list": (
        {
            "type": "interactive",
            "interactive": {
                "type": "list",
                "header": {"type": "image", "image": {"link": LINK}},
                "body": {"text": "b"},
                "action": {"button": "b", "sections": [{"rows": [{"id": "a", "title": "a"}]}]},
            },
        },
        "Invalid value 'image' - at `$.message.interactive.header.type`",
        True,
    ),
    "header on a product": (
        {
            "type": "interactive",
            "interactive": {
                "type": "product",
                "header": {"type": "text", "text": "h"},
                "action": {"catalog_id": "1", "product_retailer_id": "2"},
            },
        },
        "unknown field `header`",
        True,
    ),
    "product list without header": (
        {
            "type": "interactive",
            "interactive": {
                "type": "product_list",
                "body": {"text": "b"},
                "action": {
                    "catalog_id": "1",
                    "sections": [{"product_items": [{"product_retailer_id": "a"}]}],
                },
            },
        },
        "missing required field `header`",
        True,
    ),
    "flow by id and name": (
        {
            "type": "interactive",
            "interactive": {
                "type": "flow",
                "body": {"text": "b"},
                "action": {
                    "name": "flow",
                    "parameters": {
                        "flow_message_version": "3",
                        "flow_id": "1",
                        "flow_name": "n",
                        "flow_cta": "Go",
                    },
                },
            },
        },
        "give exactly one of flow_id, flow_name",
        False,
    ),
    "cta url wrong name": (
        {
            "type": "interactive",
            "interactive": {
                "type": "cta_url",
                "body": {"text": "b"},
                "action": {"name": "url", "parameters": {"display_text": "a", "url": LINK}},
            },
        },
        "Invalid value 'url' - at `$.message.interactive.action.name`",
        True,
    ),
    "template name upper case": (
        {"type": "template", "template": {"name": "Order", "language": {"code": "en_US"}}},
        "matching regex '^[a-z0-9_]+$' - at `$.message.template.name`",
        True,
    ),
    "template button index 10": (
        {
            "type": "template",
            "template": {
                "name": "t",
                "language": {"code": "en"},
                "components": [{"type": "button", "sub_type": "url", "index": 10}],
            },
        },
        "<= 9",
        True,
    ),
    "template header text too long": (
        {
            "type": "template",
            "template": {
                "name": "t",
                "language": {"code": "en"},
                "components": [
                    {"type": "header", "parameters": [{"type": "text", "text": "h" * 61}]}
                ],
            },
        },
        "longer than 60",
        False,
    ),
    "reaction without emoji": (
        {"type": "reaction", "reaction": {"message_id": "wamid.X"}},
        "missing required field `emoji`",
        True,
    ),
}


@pytest.mark.parametrize("name", REFUSED)
def test_a_message_breaking_a_limit_is_refused_with_its_reason(name: str) -> None:
    message, reason, by_schema_too = REFUSED[name]
    assert reason in refusal(send_job(message))
    assert bool(list(VALIDATOR.iter_errors(send_job(message)))) == by_schema_too


@pytest.mark.parametrize(
    ("envelope", "reason"),
    [
        ({"callback_data": "c" * 513}, "length <= 512 - at `$.callback_data`"),
        ({"phone_number_id": "1.2"}, "matching regex '^[0-9]+$' - at `$.phone_number_id`"),
        ({"idempotency_key": ""}, "length >= 1 - at `$.idempotency_key`"),
        ({"kind": "fax"}, "Invalid value 'fax' - at `$.kind`"),
    ],
)
def test_an_envelope_breaking_a_rule_is_refused(envelope: dict[str, Any], reason: str) -> None:
    job = send_job({"type": "text", "text": {"body": "a"}}, **envelope)
    assert reason in refusal(job)
    assert list(VALIDATOR.iter_errors(job))


def test_a_reaction_cannot_reply_to_a_message() -> None:
    assert "a reaction cannot reply" in refusal(send_job(reaction("wamid.X"), reply_to="wamid.X"))


def test_a_job_built_in_python_is_checked_before_it_goes_out() -> None:
    job = SendJob(
        idempotency_key="k",
        phone_number_id=NUMBER,
        to=TO,
        message=TextMessage(text=Text(body="x" * 5000)),
    )
    with pytest.raises(msgspec.ValidationError, match="length <= 4096"):
        encode_job(job)


def test_a_media_source_rule_holds_in_python_too() -> None:
    with pytest.raises(ValueError, match="exactly one of id, link, file"):
        ImageMessage(image=Image())


@pytest.mark.parametrize("name", EVERY_KIND)
def test_a_messages_type_is_its_tag(name: str) -> None:
    job = decode(send_job(EVERY_KIND[name]))
    assert isinstance(job, SendJob)
    assert message_type(job.message) == EVERY_KIND[name]["type"]
