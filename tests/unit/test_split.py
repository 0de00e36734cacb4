"""Splitting a body into events: keys, routing keys, contacts, and every event exactly once."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pamqp import commands, frame, header

from tests.helpers import cloudapi_dir
from wapipe.ingress.split import (
    MAX_EVENTS_PER_BODY,
    Event,
    NotAWebhook,
    quarantine_event,
    routing_token,
    split_body,
)
from wapipe.shared import amqp, topology
from wapipe.shared.schemas.events import Header, event_decoder

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


# What AMQP can carry ---------------------------------------------------------------------------

# The least frame size an AMQP 0-9-1 peer may negotiate: a content header must fit in one frame.
FRAME_MIN_SIZE = 4096


def assert_publishable(event: Event) -> None:
    """Marshal the event's frames as aiormq would (pamqp raises TypeError on what AMQP cannot
    carry: a short string past 255 bytes, a header value of an unknown type)."""
    frame.marshal(
        commands.Basic.Publish(
            exchange=topology.EVENTS_EXCHANGE, routing_key=event.routing_key, mandatory=True
        ),
        1,
    )
    properties = commands.Basic.Properties(
        message_id=event.message_id,
        headers=event.headers,
        content_type=amqp.CONTENT_TYPE,
        delivery_mode=amqp.PERSISTENT,
    )
    assert len(frame.marshal(header.ContentHeader(0, len(event.body), properties), 1)) <= (
        FRAME_MIN_SIZE
    )
    assert event.message_id  # aiormq would swap an empty one for a random id
    assert all(isinstance(value, str) for value in event.headers.values())
    if event.kind != "quarantine":
        event_decoder.decode(event.body)


def one_message(message_id: Any, phone_number_id: Any = "118765", waba_id: Any = "1") -> bytes:
    change = messages_change(
        messages=[{"from": "16315551181", "id": message_id, "timestamp": "1", "type": "text"}]
    )
    change["value"]["metadata"]["phone_number_id"] = phone_number_id
    return body_of([{"id": waba_id, "changes": [change]}])


def one_status(status_id: str, status: str = "sent", code: int | None = None) -> bytes:
    item: dict[str, Any] = {"id": status_id, "status": status, "timestamp": "1"}
    if code is not None:
        item["errors"] = [{"code": code}]
    return body_of([{"id": "1", "changes": [messages_change(statuses=[item])]}])


@pytest.mark.parametrize(
    "body",
    [
        one_message("wamid." + "A" * 250),  # 256 bytes
        one_message("wamid." + "é" * 125),  # 131 characters, 256 bytes
        one_message(""),
        one_message(7),  # not a string
        one_message("wamid.A", phone_number_id="1" * 256),
        one_message("wamid.A", phone_number_id=118765),
        one_message("wamid.A", waba_id="1" * 256),
        one_message("wamid.A", waba_id=""),
        one_message("wamid.A", waba_id=10**300),
        one_status(""),
        one_status("wamid.A", status="s" * 250),
        one_status("wamid.A", code=10**260),
        body_of([{"id": "1", "changes": [{"field": "f" * 300, "value": {}}]}]),
        body_of([{"id": "1", "changes": [{"field": "é" * 120, "value": {}}]}]),
        body_of([{"id": "1", "time": 2**64, "changes": [{"field": "calls", "value": {}}]}]),
        body_of([{"id": "1", "changes": [{"field": "calls", "value": {"metadata": []}}]}]),
        one_message("wamid.\ud800"),  # a lone surrogate, escaped by json.dumps
        one_message("wamid.A").replace(b"wamid.A", b"wamid.\xff"),  # not UTF-8
    ],
)
def test_signed_body_whose_ids_amqp_cannot_carry_is_refused_for_quarantine(body: bytes) -> None:
    with pytest.raises(NotAWebhook) as refused:
        split_body(body, RECEIVED_AT)
    assert_publishable(quarantine_event(body, str(refused.value), RECEIVED_AT))


def test_ids_up_to_255_bytes_route() -> None:
    wamid = "wamid." + "é" * 124 + "A"  # 255 bytes
    [event] = split_body(one_message(wamid, phone_number_id="9" * 255), RECEIVED_AT)
    assert (event.kind, event.message_id) == ("message", wamid)
    assert event.headers[Header.PHONE_NUMBER_ID] == "9" * 255
    assert_publishable(event)


def test_empty_phone_number_id_is_no_number() -> None:
    [event] = split_body(one_message("wamid.A", phone_number_id=""), RECEIVED_AT)
    assert Header.PHONE_NUMBER_ID not in event.headers
    assert event_decoder.decode(event.body).phone_number_id is None


# JSON of every type where the envelope has ids, fields and values: long, empty, not ASCII, an
# escaped lone surrogate, numbers past 64 bits; and often what Meta sends, so that many route.
_text = st.one_of(
    st.sampled_from(["messages", "calls", "user_preferences", "sent", "text", "wamid.A", "1"]),
    st.text(max_size=8),
    st.text(st.characters(), min_size=60, max_size=300),
    st.just(""),
)
_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(2**63, 2**900)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
_any_id = st.one_of(_text, _text, _json, st.sampled_from(["\ud800", "a\udfff"]))
_metadata = st.fixed_dictionaries({}, optional={"phone_number_id": _any_id, "x": _json})
_item = st.fixed_dictionaries(
    {},
    optional={
        "id": _any_id,
        "status": _any_id,
        "type": _any_id,
        "from": _any_id,
        "errors": st.lists(
            st.fixed_dictionaries({}, optional={"code": st.integers() | _json}), max_size=2
        ),
    },
)
_value = st.one_of(
    _json,
    st.fixed_dictionaries(
        {},
        optional={
            "metadata": _metadata | _json,
            "statuses": st.lists(_item, max_size=2),
            "messages": st.lists(_item, max_size=2),
            "errors": st.lists(_json, max_size=1),
            "contacts": st.lists(_json, max_size=2),
        },
    ),
)
_any_change = st.fixed_dictionaries({"field": _any_id, "value": _value})
_any_entry = st.fixed_dictionaries(
    {"id": _any_id, "changes": st.lists(_any_change, max_size=3)},
    optional={"time": st.integers() | _json},
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_any_entry, max_size=3), st.booleans())
def test_any_envelope_shaped_body_routes_or_is_quarantined_and_never_raises(
    entries: list[dict[str, Any]], not_utf8: bool
) -> None:
    body = body_of(entries)
    if not_utf8:
        body = body.replace(b"}", b"\xff}", 1)
    try:
        events = split_body(body, RECEIVED_AT)
    except NotAWebhook as refused:
        events = [quarantine_event(body, str(refused), RECEIVED_AT)]
    assert events
    for event in events:
        assert_publishable(event)


@given(st.binary(max_size=200))
def test_any_bytes_route_or_are_quarantined(body: bytes) -> None:
    try:
        events = split_body(body, RECEIVED_AT)
    except NotAWebhook as refused:
        events = [quarantine_event(body, str(refused), RECEIVED_AT)]
    for event in events:
        assert_publishable(event)


# The number's metadata on other fields ---------------------------------------------------------


def other_change(field: str, value: Any) -> bytes:
    return body_of([{"id": "109876543210987", "changes": [{"field": field, "value": value}]}])


METADATA = {"display_phone_number": "15550101234", "phone_number_id": "118765432109876"}


@pytest.mark.parametrize(
    "body",
    [
        sample("user_preferences_stop_marketing.json"),
        other_change(
            "smb_message_echoes",
            {
                "messaging_product": "whatsapp",
                "metadata": METADATA,
                "message_echoes": [
                    {"from": "15550101234", "to": "16315551181", "id": "wamid.E", "type": "text"}
                ],
            },
        ),
        other_change(
            "calls",
            {
                "messaging_product": "whatsapp",
                "metadata": METADATA,
                "calls": [{"id": "wacid.C", "event": "connect", "from": "16315551181"}],
            },
        ),
    ],
)
def test_other_fields_carry_the_number_of_their_metadata(body: bytes) -> None:
    [event] = split_body(body, RECEIVED_AT)
    assert event.kind == "account"
    assert event.headers[Header.PHONE_NUMBER_ID] == "118765432109876"
    decoded = event_decoder.decode(event.body)
    assert (decoded.phone_number_id, decoded.display_phone_number) == (
        "118765432109876",
        "15550101234",
    )


@pytest.mark.parametrize("value", [{"event": "x"}, {"metadata": None}, "text", [1], None, 5])
def test_other_fields_without_metadata_carry_no_number(value: Any) -> None:
    [event] = split_body(other_change("some_future_field", value), RECEIVED_AT)
    assert Header.PHONE_NUMBER_ID not in event.headers
    assert event_decoder.decode(event.body).phone_number_id is None


# Nesting past the decoder's depth -------------------------------------------------------------

DEPTH = 50_000
_WHERE = {
    "the body itself": "DEEP",
    "a field beside entry": '{"object":"whatsapp_business_account","x":DEEP,"entry":[]}',
    "entry": '{"object":"whatsapp_business_account","entry":DEEP}',
    "an entry's id": '{"object":"whatsapp_business_account","entry":[{"id":DEEP}]}',
    "an entry's time": '{"object":"whatsapp_business_account","entry":[{"id":"1","time":DEEP}]}',
    "changes": '{"object":"whatsapp_business_account","entry":[{"id":"1","changes":DEEP}]}',
    "a change's field": (
        '{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":DEEP}]}]}'
    ),
    "a messages value": (
        '{"object":"whatsapp_business_account","entry":[{"id":"1","changes":'
        '[{"field":"messages","value":DEEP}]}]}'
    ),
    "another field's value": (
        '{"object":"whatsapp_business_account","entry":[{"id":"1","changes":'
        '[{"field":"calls","value":DEEP}]}]}'
    ),
}
_IN_MESSAGES_VALUE = {
    "metadata": '{"metadata":DEEP,"statuses":[{"id":"w","status":"sent"}]}',
    "a status": '{"statuses":[{"id":"w","status":"sent","pricing":DEEP}]}',
    "a status's errors": '{"statuses":[{"id":"w","status":"failed","errors":DEEP}]}',
    "a message": '{"messages":[{"id":"w","type":"text","text":DEEP}]}',
    "a message's id": '{"messages":[{"id":DEEP}]}',
    "a contact of two": (
        '{"contacts":[{"wa_id":"1"},{"wa_id":"2","profile":DEEP}],'
        '"messages":[{"id":"w","from":"2","type":"text"}]}'
    ),
    "errors": '{"errors":DEEP}',
    "metadata with nothing else": '{"metadata":DEEP}',
}


def deep_bodies() -> list[Any]:
    shapes = {"arrays": ("[" * DEPTH, "]" * DEPTH), "objects": ('{"a":' * DEPTH, "}" * DEPTH)}
    value = _WHERE["a messages value"]
    templates = {
        **_WHERE,
        **{where: value.replace("DEEP", inner) for where, inner in _IN_MESSAGES_VALUE.items()},
    }
    return [
        pytest.param(
            template.replace("DEEP", f"{opening}1{closing}").encode(), id=f"{name}-{where}"
        )
        for where, template in templates.items()
        for name, (opening, closing) in shapes.items()
    ]


@pytest.mark.parametrize("body", deep_bodies())
def test_a_body_nested_past_the_decoders_depth_is_refused_for_quarantine(body: bytes) -> None:
    with pytest.raises(NotAWebhook):
        split_body(body, RECEIVED_AT)


def test_a_body_of_more_events_than_any_batch_of_metas_is_refused_for_quarantine() -> None:
    statuses = [{"id": f"wamid.{n}", "status": "sent"} for n in range(MAX_EVENTS_PER_BODY + 1)]
    with pytest.raises(NotAWebhook, match="more than"):
        split_body(body_of([{"id": "1", "changes": [messages_change(statuses)]}]), RECEIVED_AT)
    changes = [{"field": "calls", "value": n} for n in range(MAX_EVENTS_PER_BODY + 1)]
    with pytest.raises(NotAWebhook, match="more than"):
        split_body(body_of([{"id": "1", "changes": changes}]), RECEIVED_AT)


def test_a_body_of_as_many_events_as_allowed_routes() -> None:
    statuses = [{"id": f"wamid.{n}", "status": "sent"} for n in range(MAX_EVENTS_PER_BODY)]
    body = body_of([{"id": "1", "changes": [messages_change(statuses)]}])
    assert len(split_body(body, RECEIVED_AT)) == MAX_EVENTS_PER_BODY
