"""A send job addresses its customer by phone number (``to``) or by BSUID (``recipient``):
exactly one, as Meta's Messages API takes them (docs/cloudapi/usernames.md)."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import msgspec
import pytest

from tests.unit.test_send_cli import parse, sent
from wapipe.cli.errors import USAGE, CommandError
from wapipe.cli.send import run_send
from wapipe.shared.schemas.export import ROOT
from wapipe.shared.schemas.jobs import (
    SendJob,
    api_message,
    customer_of,
    is_bsuid,
    job_decoder,
    text_message,
)
from wapipe.shared.settings import Settings
from wapipe.workers.sender.held import recipient_of

BSUID = "US.13491208655302741918"
PARENT = "US.ENT.11815799212886844830"
SCHEMA = json.loads((ROOT / "schemas" / "send-job.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)


def job(**address: Any) -> dict[str, Any]:
    return {
        "kind": "send",
        "idempotency_key": "k-1",
        "phone_number_id": "118765",
        **address,
        "message": {"type": "text", "text": {"body": "hi"}},
    }


def refusal(body: dict[str, Any]) -> str:
    with pytest.raises(msgspec.ValidationError) as raised:
        job_decoder.decode(json.dumps(body))
    return str(raised.value)


@pytest.mark.parametrize("bsuid", [BSUID, PARENT, "BR.1502576394655843", "DE.a1B2c3"])
def test_a_job_to_a_bsuid_is_sent_as_recipient_not_to(bsuid: str) -> None:
    decoded = job_decoder.decode(json.dumps(job(recipient=bsuid)))
    assert isinstance(decoded, SendJob)
    body = api_message(decoded)
    assert body["recipient"] == bsuid
    assert "to" not in body
    assert not list(VALIDATOR.iter_errors(job(recipient=bsuid)))


def test_a_job_to_a_phone_number_is_sent_as_to_alone() -> None:
    decoded = job_decoder.decode(json.dumps(job(to="16315551181")))
    assert isinstance(decoded, SendJob)
    body = api_message(decoded)
    assert body["to"] == "16315551181"
    assert "recipient" not in body


@pytest.mark.parametrize(
    "address",
    [{}, {"to": None, "recipient": None}, {"to": "16315551181", "recipient": BSUID}],
    ids=["neither", "both null", "both"],
)
def test_a_job_naming_its_customer_other_than_once_is_refused_with_a_clear_reason(
    address: dict[str, Any],
) -> None:
    reason = refusal(job(**address))
    assert "to (a phone number) or recipient (a BSUID)" in reason
    assert "\n" not in reason
    assert list(VALIDATOR.iter_errors(job(**address)))  # the published schema says so too


@pytest.mark.parametrize(
    "malformed",
    ["us.13491208655302741918", "US13491208655302741918", "USA.1349", "US.", "US.12-34", "16315"],
)
def test_a_malformed_bsuid_is_refused_naming_the_field(malformed: str) -> None:
    reason = refusal(job(recipient=malformed))
    assert "$.recipient" in reason
    assert list(VALIDATOR.iter_errors(job(recipient=malformed)))


def test_a_bsuid_given_as_to_is_refused_pointing_at_recipient() -> None:
    assert "goes in recipient" in refusal(job(to=BSUID))


def test_the_pair_limit_key_is_the_customer_as_the_job_names_them() -> None:
    by_phone = SendJob(
        idempotency_key="a", phone_number_id="1", to="16315551181", message=text_message("x")
    )
    by_bsuid = SendJob(
        idempotency_key="b", phone_number_id="1", recipient=BSUID, message=text_message("x")
    )
    assert (customer_of(by_phone), recipient_of(by_phone)) == ("16315551181", "16315551181")
    assert (customer_of(by_bsuid), recipient_of(by_bsuid)) == (BSUID, BSUID)


def test_only_bsuids_look_like_bsuids() -> None:
    assert is_bsuid(BSUID)
    assert is_bsuid(PARENT)
    assert not any(is_bsuid(x) for x in ("16315551181", "+1 631 555 1181", "US-1234"))


def test_wapipe_send_to_a_bsuid_publishes_a_job_with_recipient() -> None:
    built = sent("text", "--to", BSUID, "--body", "hi", "--from", "118765")
    assert (built.to, built.recipient) == (None, BSUID)
    assert sent("text", "--to", "+1 631 555 1181", "--body", "hi", "--from", "1").to == (
        "+1 631 555 1181"
    )


def test_wapipe_send_to_a_malformed_bsuid_exits_2_with_one_line() -> None:
    args = parse("text", "--to", "us.1349", "--body", "hi", "--from", "118765")
    with pytest.raises(CommandError) as refused:
        run_send(Settings(), args)
    assert refused.value.code == USAGE
    assert "recipient" in str(refused.value)
    assert "\n" not in str(refused.value)
