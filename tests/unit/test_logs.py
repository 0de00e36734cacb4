"""Structured logs: JSON lines with the extra fields, and throttled warnings."""

from __future__ import annotations

import json
import logging

import pytest

from wapipe.shared.logs import JsonFormatter, Throttle


def test_json_formatter_writes_one_object_with_the_extra_fields() -> None:
    record = logging.makeLogRecord(
        {"name": "x", "levelname": "WARNING", "msg": "broker %s", "args": ("away",), "attempt": 3}
    )
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["msg"], entry["level"], entry["attempt"]) == ("broker away", "warning", 3)


def test_throttle_lets_one_line_a_key_through_and_counts_the_rest(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.throttle")
    throttle = Throttle(every_s=3600)
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        for _ in range(5):
            throttle.warning(logger, "a", "first kind")
        throttle.warning(logger, "b", "second kind")
    assert [r.getMessage() for r in caplog.records] == ["first kind", "second kind"]
    throttle.every_s = 0
    with caplog.at_level(logging.WARNING, logger="test.throttle"):
        throttle.warning(logger, "a", "first kind again")
    assert caplog.records[-1].__dict__["held_back"] == 4
