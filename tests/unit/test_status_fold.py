"""The status worker's pure part: decoding, and folding a batch per message."""

from __future__ import annotations

import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.helpers import status_webhook
from wapipe.ingress.split import split_body
from wapipe.workers.retry import Reject
from wapipe.workers.status import StatusEvent, decode, fold

KNOWN = ("sent", "delivered", "read", "failed")


def update(wamid: str, status: str) -> StatusEvent:
    code = 131026 if status == "failed" else None
    (event,) = split_body(status_webhook(wamid, status, code=code), time.time())
    return decode(event.body)


@given(st.lists(st.sampled_from(KNOWN), min_size=1, max_size=8), st.randoms())
def test_a_batch_folds_to_the_same_state_in_any_order(statuses: list[str], rng: object) -> None:
    items = [update("wamid.P", status) for status in statuses]
    shuffled = list(items)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert fold(items) == fold(shuffled)


def test_one_state_per_message() -> None:
    states = fold([update("wamid.A", "sent"), update("wamid.B", "read"), update("wamid.A", "read")])
    assert [(state.wamid, state.status_rank) for state in states] == [
        ("wamid.A", 3),
        ("wamid.B", 3),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"v":1}',
        b'{"v":1,"kind":"message","key":"k","routing_key":"message.text",'
        b'"field":"messages","waba_id":"1","received_at":1.0,"payload":{}}',
    ],
)
def test_what_is_not_a_status_event_is_rejected(body: bytes) -> None:
    with pytest.raises(Reject):
        decode(body)
