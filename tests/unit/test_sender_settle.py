"""How an unknown outcome ends (workers/sender/settle.py ``settlement``): pure."""

from __future__ import annotations

from wapipe.shared.storage import send_jobs
from wapipe.shared.storage.send_jobs import Evidence, JobRecord
from wapipe.workers.sender.settle import settlement

SETTLE_S = 600.0


def unknown(updated_at: float = 1000.0) -> JobRecord:
    return JobRecord(
        idempotency_key="k",
        phone_number_id="1",
        recipient="2",
        state=send_jobs.UNKNOWN.value,
        wamid=None,
        error_code=None,
        error_title=None,
        error_details=None,
        callback_data="wapipe:k",
        attempts=1,
        job="{}",
        updated_at=updated_at,
    )


def test_a_delivered_status_settles_it_accepted_with_its_wamid() -> None:
    found = Evidence("wamid.A", "delivered", None, None, None)
    change = settlement(unknown(), found, 1001.0, SETTLE_S)
    assert change == send_jobs.SETTLE_ACCEPTED("k", 1001.0, wamid="wamid.A")
    assert change.only_from == {"unknown"}


def test_a_failed_status_settles_it_failed_with_metas_code() -> None:
    found = Evidence("wamid.A", "failed", 131026, "Message undeliverable", "details")
    change = settlement(unknown(), found, 1001.0, SETTLE_S)
    assert change is not None
    assert (change.state, change.error_code, change.error_title, change.wamid) == (
        "failed",
        131026,
        "Message undeliverable",
        "wamid.A",
    )


def test_no_status_waits_then_fails_it_as_unknown_never_sent_again() -> None:
    assert settlement(unknown(1000.0), None, 1000.0 + SETTLE_S - 1, SETTLE_S) is None
    change = settlement(unknown(1000.0), None, 1000.0 + SETTLE_S, SETTLE_S)
    assert change is not None
    assert (change.state, change.error_title) == ("failed", "outcome unknown")
