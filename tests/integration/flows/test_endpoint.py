"""POST /flows against a real RabbitMQ and a flows worker: the booking example played to its
close, and every bad input answered as Meta expects while good requests go on being answered."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import IngressClient, start_ingress, with_settings
from tests.integration.flows_support import call, post_sealed, private_key
from wapipe.shared.flows import crypto, keys
from wapipe.shared.settings import Settings


def exchange(screen: str, token: str = "booking:1", **data: Any) -> dict[str, Any]:
    return {
        "version": "3.0",
        "action": "data_exchange",
        "screen": screen,
        "flow_token": token,
        "data": data,
    }


def init(token: str = "booking:1") -> dict[str, Any]:
    return {"version": "3.0", "action": "INIT", "flow_token": token}


PUBLIC = private_key(0).public_key


async def test_ping_is_answered_by_the_endpoint_alone(endpoint: IngressClient) -> None:
    status, answer = await call(endpoint, PUBLIC(), {"version": "3.0", "action": "ping"})
    assert (status, answer) == (200, {"data": {"status": "active"}})


async def test_the_booking_flow_is_played_to_its_closing_answer(answered: IngressClient) -> None:
    status, first = await call(answered, PUBLIC(), init())
    assert status == 200
    assert first["screen"] == "APPOINTMENT"
    assert {"id": "haircut", "title": "Haircut"} in first["data"]["departments"]

    _, taken = await call(
        answered, PUBLIC(), exchange("APPOINTMENT", department="haircut", slot="tue-11")
    )
    assert taken["screen"] == "APPOINTMENT"
    assert "taken" in taken["data"]["error_message"]

    _, details = await call(
        answered, PUBLIC(), exchange("APPOINTMENT", department="haircut", slot="mon-10")
    )
    assert details == {"screen": "DETAILS", "data": {"department": "haircut", "slot": "mon-10"}}

    _, summary = await call(
        answered, PUBLIC(), exchange("DETAILS", name="Ana", department="haircut", slot="mon-10")
    )
    assert summary["screen"] == "SUMMARY"
    assert summary["data"]["summary"] == "Haircut, Monday 10:00, for Ana"

    back = {"version": "3.0", "action": "BACK", "screen": "SUMMARY", "flow_token": "booking:1"}
    assert (await call(answered, PUBLIC(), back))[1]["screen"] == "APPOINTMENT"

    status, closing = await call(
        answered,
        PUBLIC(),
        exchange("SUMMARY", confirm=True, name="Ana", department="haircut", slot="mon-10"),
    )
    assert status == 200
    assert closing == {
        "screen": "SUCCESS",
        "data": {
            "extension_message_response": {
                "params": {
                    "department": "haircut",
                    "slot": "mon-10",
                    "name": "Ana",
                    "flow_token": "booking:1",
                }
            }
        },
    }


async def test_an_error_notification_is_acknowledged(answered: IngressClient) -> None:
    notice = exchange("DETAILS", error="invalid-screen-transition", error_message="no such screen")
    assert await call(answered, PUBLIC(), notice) == (200, {"data": {"acknowledged": True}})


async def test_a_forged_signature_is_answered_432(endpoint: IngressClient) -> None:
    assert (await call(endpoint, PUBLIC(), init(), secret="not-the-app-secret"))[0] == 432


async def test_a_request_sealed_to_another_key_is_answered_421(endpoint: IngressClient) -> None:
    assert (await call(endpoint, private_key(1).public_key(), init()))[0] == 421


async def test_a_tampered_or_malformed_body_is_answered_421(endpoint: IngressClient) -> None:
    envelope, _ = crypto.encrypt_request(b'{"action": "ping"}', PUBLIC())
    tampered = crypto.EncryptedRequest(
        envelope.encrypted_flow_data[:-4] + "AAAA",
        envelope.encrypted_aes_key,
        envelope.initial_vector,
    )
    for body in (crypto.envelope_encoder.encode(tampered), b"{}", b"not json"):
        assert (await post_sealed(endpoint, body))[0] == 421


async def test_during_a_key_rotation_both_keys_are_answered(
    flows_settings: Settings,
) -> None:
    both = keys.private_pem(private_key(0)).decode() + keys.private_pem(private_key(1)).decode()
    client = await start_ingress(with_settings(flows_settings, flows_private_key=both))
    try:
        for number in (0, 1):
            ping = {"version": "3.0", "action": "ping"}
            assert (await call(client, private_key(number).public_key(), ping))[0] == 200
    finally:
        await client.close()


async def test_an_unknown_action_is_answered_400(endpoint: IngressClient) -> None:
    assert (await call(endpoint, PUBLIC(), {"version": "3.0", "action": "teleport"}))[0] == 400


async def test_an_unknown_or_used_flow_token_is_answered_427(answered: IngressClient) -> None:
    status, answer = await call(answered, PUBLIC(), init("nobody-knows-this-token"))
    assert status == 427
    assert answer == {"error_msg": "This form is no longer available."}
    status, answer = await call(answered, PUBLIC(), init("booking:1:used"))
    assert (status, answer) == (427, {"error_msg": "This booking is already made."})


async def test_a_slow_handler_gets_an_error_answer_within_the_deadline(
    answered: IngressClient,
) -> None:
    # The handler would answer LATE after 5 s: the answer came from the deadline instead.
    status, answer = await call(answered, PUBLIC(), exchange("APPOINTMENT", token="slow"))
    assert status == 200
    assert answer["screen"] == "APPOINTMENT"
    assert "try again" in answer["data"]["error_message"]


async def test_a_handler_exception_gets_an_error_answer_at_once(
    answered: IngressClient, caplog: pytest.LogCaptureFixture
) -> None:
    status, answer = await call(answered, PUBLIC(), exchange("DETAILS", token="broken", name="Ana"))
    assert status == 200
    assert answer["screen"] == "DETAILS"
    assert "error_message" in answer["data"]
    assert (await call(answered, PUBLIC(), init("broken")))[0] == 500
    logged = " ".join(str(record.__dict__) for record in caplog.records)
    assert "flow handler failed" in logged
    assert "Ana" not in logged
    assert (await call(answered, PUBLIC(), init()))[1]["screen"] == "APPOINTMENT"  # still serving


async def test_without_a_worker_the_endpoint_answers_within_the_deadline(
    endpoint: IngressClient,
) -> None:
    assert (await call(endpoint, PUBLIC(), init()))[0] == 500


async def test_without_a_key_the_endpoint_says_it_is_not_configured(
    ingress: IngressClient,
) -> None:
    assert (await post_sealed(ingress, b"{}"))[0] == 503
