"""What the sender does about each error (workers/sender/policy.py), over the whole error table."""

from __future__ import annotations

import json

import pytest

from wapipe.shared.cloudapi.errors import (
    RANGES,
    TABLE,
    CloudApiError,
    Kind,
    OutcomeUnknown,
    Scope,
    error_from_response,
    error_without_code,
)
from wapipe.shared.schemas.jobs import MarkReadJob, SendJob, text_message
from wapipe.workers.sender.policy import (
    ACCOUNT_PAUSE_MAX_S,
    AUTH_PAUSE_MAX_S,
    DAY_LIMIT_DELAY_S,
    Decision,
    Fail,
    Hold,
    Pause,
    Retry,
    Slow,
    Unknown,
    decide,
)

SEND = SendJob(idempotency_key="k", phone_number_id="1", to="2", message=text_message("hi"))
READ = MarkReadJob(idempotency_key="r", phone_number_id="1", message_id="wamid.X")
MAX_ATTEMPTS = 5
PAUSE_S = 30.0


def meta_error(code: int, http_status: int = 400) -> CloudApiError:
    body = {"error": {"code": code, "message": f"(#{code}) what Meta says", "type": "OAuth"}}
    return error_from_response(http_status, json.dumps(body).encode())


def decided(
    error: CloudApiError, *, job: SendJob | MarkReadJob = SEND, attempts: int = 0, strikes: int = 0
) -> Decision:
    return decide(error, job, attempts, strikes, max_attempts=MAX_ATTEMPTS, auth_pause_s=PAUSE_S)


@pytest.mark.parametrize("code", [130429, 131048])
def test_the_numbers_throughput_slows_the_number(code: int) -> None:
    assert decided(meta_error(code)) == Slow(Scope.NUMBER)


def test_the_pair_rate_backs_the_recipient_off() -> None:
    assert decided(meta_error(131056)) == Slow(Scope.RECIPIENT)


def test_the_days_limit_holds_the_recipient() -> None:
    assert decided(meta_error(131064)) == Hold(DAY_LIMIT_DELAY_S)


@pytest.mark.parametrize("code", [4, 80007, 132069])
def test_app_and_account_rate_limits_pause_the_number_longer_each_time(code: int) -> None:
    pauses = [decided(meta_error(code), strikes=strikes) for strikes in range(7)]
    assert all(isinstance(p, Pause) and not p.reload_token for p in pauses)
    assert [p.seconds for p in pauses if isinstance(p, Pause)] == [
        1,
        4,
        16,
        64,
        256,
        ACCOUNT_PAUSE_MAX_S,
        ACCOUNT_PAUSE_MAX_S,
    ]


@pytest.mark.parametrize("code", [0, 10, 190, 131005, 200, 299])
def test_a_refused_token_pauses_the_number_doubling_and_rereads_the_token(code: int) -> None:
    pauses = [decided(meta_error(code, 401), strikes=strikes) for strikes in range(7)]
    assert all(isinstance(p, Pause) and p.reload_token for p in pauses)
    assert [p.seconds for p in pauses if isinstance(p, Pause)] == [
        30,
        60,
        120,
        240,
        480,
        AUTH_PAUSE_MAX_S,
        AUTH_PAUSE_MAX_S,
    ]


@pytest.mark.parametrize("code", [368, 131031, 131037, 131042, 131044, 131045])
def test_a_blocked_account_pauses_the_number_like_a_refused_token(code: int) -> None:
    assert decided(meta_error(code)) == Pause(PAUSE_S, f"{code}: what Meta says", True)


def test_a_send_to_a_customer_the_business_blocked_fails_at_once_never_retried() -> None:
    # 130403: docs/cloudapi/blocking.md; the block must be lifted first (wapipe block remove).
    for attempts in range(MAX_ATTEMPTS):
        assert decided(meta_error(130403), attempts=attempts) == Fail(
            "what Meta says", 130403, None
        )


@pytest.mark.parametrize("code", [100, 130403, 131026, 131047, 131051, 132000, 133005])
def test_a_permanent_refusal_fails_the_job_with_its_code_and_title(code: int) -> None:
    assert decided(meta_error(code)) == Fail("what Meta says", code, None)


@pytest.mark.parametrize(
    "error",
    [meta_error(131000, 500), meta_error(131016, 503), error_without_code("HTTP 502", 502)],
    ids=["131000", "131016", "bare 502"],
)
def test_a_transient_failure_is_retried_with_back_off_then_fails(error: CloudApiError) -> None:
    for attempts in range(MAX_ATTEMPTS - 1):
        decision = decided(error, attempts=attempts)
        assert isinstance(decision, Retry)
        ceiling = min(60.0, 2.0**attempts)
        assert ceiling / 2 <= decision.delay_s <= ceiling
    assert isinstance(decided(error, attempts=MAX_ATTEMPTS - 1), Fail)


def test_an_unanswered_send_is_unknown_never_retried() -> None:
    error = OutcomeUnknown(code=None, message="timed out", title="no answer")
    assert decided(error, attempts=0) == Unknown("no answer", "timed out")


def test_an_unanswered_read_receipt_is_simply_tried_again() -> None:
    assert isinstance(decided(OutcomeUnknown(code=None, message="reset"), job=READ), Retry)


def every_code() -> list[int]:
    return sorted({*TABLE, *(code for low, high, _ in RANGES for code in (low, high))})


@pytest.mark.parametrize("code", every_code())
def test_every_code_of_the_table_has_a_decision_that_fits_its_kind(code: int) -> None:
    error = meta_error(code)
    decision = decided(error)
    expected: dict[Kind, tuple[type, ...]] = {
        Kind.TRANSIENT: (Retry,),
        Kind.RATE_LIMITED: (Slow, Hold, Pause),
        Kind.AUTH: (Pause,),
        Kind.PERMANENT: (Pause,) if error.scope is Scope.ACCOUNT else (Fail,),
    }
    assert isinstance(decision, expected[error.kind])
    if isinstance(decision, Fail):  # a failure names what Meta said
        assert decision.code == code
