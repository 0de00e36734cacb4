"""A business profile update is checked against Meta's limits first."""

from __future__ import annotations

from wapipe.cli.numbers.run import SenderState, parse_sender
from wapipe.cli.profile.check import problems


def test_a_good_update_has_no_problem() -> None:
    update = {"about": "a" * 139, "websites": ["https://a.example", "http://b.example"]}
    assert problems({**update, "email": "shop@example.com", "vertical": "RETAIL"}) == []


def test_each_limit_names_its_field() -> None:
    found = problems(
        {
            "about": "a" * 140,
            "address": "b" * 257,
            "description": "c" * 513,
            "email": "@example.com",
            "websites": ["ftp://a", "https://b", "https://c"],
            "vertical": "SHOES",
        }
    )
    assert [p.split(":")[0] for p in found] == [
        "about", "address", "description", "email", "websites", "websites[0]", "vertical",
    ]  # fmt: skip


def test_an_empty_about_or_nothing_at_all_is_refused() -> None:
    assert problems({"about": ""}) == ["about: cannot be empty"]
    assert problems({}) == ["nothing to update: give at least one field"]


def test_the_senders_pauses_and_pace_are_read_from_its_metrics() -> None:
    text = (
        "# TYPE wapipe_sender_paused gauge\n"
        'wapipe_sender_paused{phone_number_id="1"} 1.0\n'
        'wapipe_sender_paused{phone_number_id="2"} 0.0\n'
        "# TYPE wapipe_sender_pace gauge\n"
        'wapipe_sender_pace{phone_number_id="2"} 40.0\n'
    )
    assert parse_sender(text) == SenderState({"1": True, "2": False}, {"2": 40.0})
