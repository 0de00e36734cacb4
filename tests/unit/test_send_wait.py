"""`wapipe send --wait=STATUS` follows one job to the status asked for, whatever order its events
come in, and ends at a failure with the Cloud API's code and title."""

from __future__ import annotations

import json

from wapipe.cli.send_wait import Watch

KEY, WAMID = "job-1", "wamid.A"


def accepted(key: str = KEY) -> tuple[str, bytes]:
    body = {"event": "accepted", "key": key, "phone_number_id": "1", "to": "2", "wamid": WAMID}
    return "outbound.accepted", json.dumps({**body, "at": 1.0}).encode()


def status(name: str, wamid: str = WAMID, **error: object) -> tuple[str, bytes]:
    payload: dict[str, object] = {"id": wamid, "status": name, "timestamp": "1"}
    if error:
        payload["errors"] = [error]
    event = {"kind": "status", "key": "k", "payload": payload}
    return f"status.{name}", json.dumps(event).encode()


def test_accepted_is_enough_by_default() -> None:
    watch = Watch(KEY, "accepted")
    assert watch.heard(*accepted()) == [f"accepted: {WAMID} to 2"]
    assert watch.done
    assert watch.failure is None


def test_waiting_for_delivered_passes_sent_and_ends_there() -> None:
    watch = Watch(KEY, "delivered")
    assert watch.heard(*accepted()) == [f"accepted: {WAMID} to 2"]
    assert watch.heard(*status("sent")) == ["sent"]
    assert not watch.done
    assert watch.heard(*status("delivered")) == ["delivered"]
    assert watch.done
    assert watch.failure is None


def test_a_status_before_the_acceptance_is_kept_and_read_beats_delivered() -> None:
    watch = Watch(KEY, "delivered")
    assert watch.heard(*status("read")) == []  # the wamid is not known yet
    assert watch.heard(*accepted()) == [f"accepted: {WAMID} to 2", "read"]
    assert watch.done


def test_a_failed_status_ends_it_with_code_and_title() -> None:
    watch = Watch(KEY, "read")
    watch.heard(*accepted())
    lines = watch.heard(*status("failed", code=131026, title="Message undeliverable"))
    assert lines == ["failed: 131026 Message undeliverable"]
    assert watch.done
    assert watch.failure == "131026 Message undeliverable"


def test_the_sender_failing_the_job_ends_it() -> None:
    watch = Watch(KEY, "sent")
    body = {"event": "failed", "key": KEY, "stage": "send", "code": 131047, "at": 1.0}
    body["title"] = "Re-engagement message"
    assert watch.heard("outbound.failed", json.dumps(body).encode()) == [
        "failed at send: 131047 Re-engagement message"
    ]
    assert watch.failure == "131047 Re-engagement message"


def test_other_jobs_and_messages_are_not_ours() -> None:
    watch = Watch(KEY, "sent")
    assert watch.heard(*accepted("job-2")) == []
    watch.heard(*accepted())
    assert watch.heard(*status("sent", wamid="wamid.B")) == []
    assert watch.heard("status.sent", b"not json") == []
    assert not watch.done
