"""Splitting a body into events: keys, routing keys, contacts, and every event exactly once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ingress.split import NotAWebhook, quarantine_event, routing_token, split_body
from shared.schemas.events import Header, event_decoder
from tests.helpers import cloudapi_dir

RECEIVED_AT = 1_795_000_000.25


def sample(name: str) -> bytes:
    return (cloudapi_dir() / "webhooks" / name).read_bytes()


def body_of(entries: list[dict[str, Any]]) -> bytes:
    return json.dumps({"object": "whatsapp_business_account", "entry": entries}).encode()


def messages_change(
    statuses: Sequence[dict[str, Any]] = (),
    messages: Sequence[dict[str, Any]] = (),
    contacts: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550101234", "phone_number_id": "118765"},
    }
    for key, items in (("statuses", statuses), ("messages", messages), ("contacts", contacts)):
        if items:
            value[key] = list(items)
    return {"field": "messages", "value": value}


def test_status_event_has_key_routing_key_and_headers() -> None:
    [event] = split_body(sample("status_delivered.json"), RECEIVED_AT)
    status = json.loads(sample("status_delivered.json"))["entry"][0]["changes"][0]["value"][
        "statuses"
    ][0]
    assert event.kind == "status"
    assert event.routing_key == "status.delivered"
    assert event.message_id == f"{status['id']}:delivered"
    assert event.headers == {
        Header.WABA_ID: "109876543210987",
        Header.PHONE_NUMBER_ID: "118765432109876",
        Header.RECEIVED_AT: "1795000000.250000",
    }
    decoded = event_decoder.decode(event.body)
    assert json.loads(bytes(decoded.payload)) == status
    assert decoded.received_at == RECEIVED_AT


def test_failed_status_key_carries_the_error_code() -> None:
    [event] = split_body(sample("status_failed_131026.json"), RECEIVED_AT)
    assert event.message_id.endswith(":failed:131026")
    assert event.routing_key == "status.failed"


def test_message_key_is_the_wamid_and_routing_key_its_type() -> None:
    [event] = split_body(sample("message_image.json"), RECEIVED_AT)
    message = json.loads(sample("message_image.json"))["entry"][0]["changes"][0]["value"][
        "messages"
    ][0]
    assert (event.kind, event.routing_key, event.message_id) == (
        "message",
        "message.image",
        message["id"],
    )


def test_message_gets_the_contact_of_its_sender() -> None:
    body = body_of(
        [
            {
                "id": "1",
                "changes": [
                    messages_change(
                        messages=[
                            {"from": "222", "id": "wamid.B", "timestamp": "1", "type": "text"},
                            {"from": "111", "id": "wamid.A", "timestamp": "1", "type": "text"},
                        ],
                        contacts=[
                            {"wa_id": "111", "profile": {"name": "A"}},
                            {"wa_id": "222", "profile": {"name": "B"}},
                        ],
                    )
                ],
            }
        ]
    )
    first, second = split_body(body, RECEIVED_AT)
    assert json.loads(bytes(event_decoder.decode(first.body).contact))["profile"]["name"] == "B"
    assert json.loads(bytes(event_decoder.decode(second.body).contact))["profile"]["name"] == "A"


def test_unknown_message_type_routes_by_its_name() -> None:
    body = body_of(
        [
            {
                "id": "1",
                "changes": [
                    messages_change(
                        messages=[{"from": "1", "id": "wamid.P", "timestamp": "1", "type": "poll"}]
                    )
                ],
            }
        ]
    )
    [event] = split_body(body, RECEIVED_AT)
    assert event.routing_key == "message.poll"


def test_other_fields_route_as_account_with_a_stable_key() -> None:
    body = sample("template_status_approved.json")
    [first] = split_body(body, RECEIVED_AT)
    [again] = split_body(body, RECEIVED_AT + 60)  # Meta's retry, a minute later
    assert first.routing_key == "account.message_template_status_update"
    assert first.message_id == again.message_id
    assert first.message_id.startswith("message_template_status_update:")
    assert Header.PHONE_NUMBER_ID not in first.headers


def test_value_level_errors_route_as_account_errors() -> None:
    [event] = split_body(sample("value_level_error.json"), RECEIVED_AT)
    assert event.routing_key == "account.errors"
    assert event.kind == "account"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"object":"page","entry":[]}',
        b'{"object":"whatsapp_business_account"}',
        b'{"object":"whatsapp_business_account","entry":[{"changes":[]}]}',
        b'{"object":"whatsapp_business_account","entry":[]}',
        b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[]}]}',
        body_of([{"id": "1", "changes": [messages_change(statuses=[{"status": "sent"}])]}]),
        body_of([{"id": "1", "changes": [{"field": "messages", "value": "text"}]}]),
    ],
)
def test_what_is_not_a_webhook_envelope_is_refused(body: bytes) -> None:
    with pytest.raises(NotAWebhook):
        split_body(body, RECEIVED_AT)


def test_quarantine_event_keeps_the_body_whole() -> None:
    event = quarantine_event(b"\x00garbage", "not JSON", RECEIVED_AT)
    assert event.body == b"\x00garbage"
    assert event.routing_key == "quarantine.body"
    assert event.headers[Header.QUARANTINE_REASON] == "not JSON"
    assert event.message_id == quarantine_event(b"\x00garbage", "other", 0).message_id


@given(st.text(max_size=80))
def test_routing_token_is_one_safe_word(text: str) -> None:
    token = routing_token(text)
    assert token
    assert not set(token) & {".", "*", "#", " "}
    assert len(token) <= 64


_status = st.fixed_dictionaries(
    {
        "id": st.text("abcdefXYZ0123=", min_size=1, max_size=12).map(lambda s: "wamid." + s),
        "status": st.sampled_from(["sent", "delivered", "read", "failed", "played", "new.kind"]),
        "timestamp": st.just("1763990000"),
        "recipient_id": st.just("16315551181"),
    }
)
_message = st.fixed_dictionaries(
    {
        "id": st.text("abcdefXYZ0123=", min_size=1, max_size=12).map(lambda s: "wamid." + s),
        "type": st.sampled_from(["text", "image", "audio", "reaction", "poll", "weird type"]),
        "from": st.just("16315551181"),
        "timestamp": st.just("1763990000"),
    }
)
_change = st.one_of(
    st.builds(
        lambda s, m: messages_change(statuses=s, messages=m),
        st.lists(_status, max_size=5),
        st.lists(_message, max_size=5),
    ),
    st.builds(
        lambda field, n: {"field": field, "value": {"n": n}},
        st.sampled_from(["account_update", "message_template_status_update", "x.y"]),
        st.integers(),
    ),
)
_entries = st.lists(
    st.builds(
        lambda i, changes: {"id": str(i), "changes": changes},
        st.integers(1, 10**15),
        st.lists(_change, max_size=4),
    ),
    max_size=4,
)


@given(_entries)
def test_every_status_message_and_change_becomes_exactly_one_event(
    entries: list[dict[str, Any]],
) -> None:
    if not any(entry["changes"] for entry in entries):
        with pytest.raises(NotAWebhook):  # nothing in it: kept whole, in quarantine
            split_body(body_of(entries), RECEIVED_AT)
        return
    events = split_body(body_of(entries), RECEIVED_AT)

    expected = []
    for entry in entries:
        for change in entry["changes"]:
            value = change["value"]
            if change["field"] != "messages":
                expected.append(("account", "account." + routing_token(change["field"])))
                continue
            expected += [
                ("status", "status." + routing_token(s["status"]))
                for s in value.get("statuses", [])
            ]
            expected += [
                ("message", "message." + routing_token(m["type"]))
                for m in value.get("messages", [])
            ]
            if not value.get("statuses") and not value.get("messages"):
                expected.append(("account", "account.messages"))
    assert [(event.kind, event.routing_key) for event in events] == expected
    payloads = [json.loads(bytes(event_decoder.decode(event.body).payload)) for event in events]
    originals = [
        item
        for entry in entries
        for change in entry["changes"]
        for item in (
            [change["value"]]
            if change["field"] != "messages"
            else change["value"].get("statuses", []) + change["value"].get("messages", [])
            or [change["value"]]
        )
    ]
    assert payloads == originals
