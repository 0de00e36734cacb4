"""Structured logs: one JSON object a line when not on a terminal, readable text when on one.

A log call's ``extra={...}`` fields become keys of the JSON object. Never pass a secret or a token
in them; ``Settings.__repr__`` masks the secret fields for the one place settings are logged.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Final

# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD: Final = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update((key, value) for key, value in record.__dict__.items() if key not in _STANDARD)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = " ".join(
            f"{key}={value}" for key, value in record.__dict__.items() if key not in _STANDARD
        )
        return f"{line} {extra}" if extra else line


class Throttle:
    """At most one log line per key per ``every_s``, saying how many it held back, so that an
    outage or a flood of forged webhooks does not flood the logs too."""

    def __init__(self, every_s: float = 10.0) -> None:
        self.every_s = every_s
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def warning(self, logger: logging.Logger, key: str, message: str, **extra: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -self.every_s) < self.every_s:
            self._held[key] = self._held.get(key, 0) + 1
            return
        self._last[key] = now
        held = self._held.pop(key, 0)
        logger.warning(message, extra={**extra, "held_back": held} if held else extra)


def setup(level: str, log_format: str, service: str) -> None:
    """Configure the root logger once per process."""
    as_json = log_format == "json" or (log_format == "auto" and not sys.stderr.isatty())
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aio-pika logs every reconnect attempt at length; our own lines say what matters.
    logging.getLogger("aiormq").setLevel(max(logging.WARNING, root.level))
    # Alembic says at INFO what it is about to do on every start (plugins, "Context impl").
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
