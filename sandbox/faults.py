"""Faults on demand, for the Graph endpoints: errors, latency, hangs, dropped connections.

    POST   /_sandbox/faults   {"endpoint": "messages", "rate": 0.2, "code": 131000}   add one
    GET    /_sandbox/faults   the faults in force
    DELETE /_sandbox/faults   clear them

A fault applies to an endpoint (``messages``, ``media`` (upload), ``download``, ``templates``,
``profile``, ``node`` (look-ups), or ``*``; or ``flows_endpoint``, the business's endpoint the
sandbox's customers call: sandbox/flow_customer.py), to a share of its requests (``rate``, decided
by a seeded RNG, so a run replays), optionally only to the next ``count`` of them. It delays the
answer (``latency_s``), then answers a Cloud API error (``code``: its body and HTTP status), a bare
HTTP status (``status``: 500, 503, 429... with no Meta body), never answers (``hang``), or closes
the connection (``drop``); with none of these, the request goes through, late. Or it goes through at
once and its answer comes ``answer_latency_s`` late (a send Meta took whose answer is lost to a
timeout, or to a sender dying while it waits).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any, Final

ENDPOINTS: Final = ("messages", "media", "download", "templates", "profile", "node", "*")
# The business's Flows endpoint, as the sandbox's customers reach it (sandbox/flow_customer.py):
# a fault there slows or breaks the calls to it; ``*`` does not reach it.
FLOWS_ENDPOINT: Final = "flows_endpoint"


@dataclass
class Fault:
    endpoint: str = "*"
    rate: float = 1.0
    count: int | None = None  # None: until cleared
    latency_s: float = 0.0
    answer_latency_s: float = 0.0  # after the request is handled
    code: int | None = None
    status: int | None = None
    hang: bool = False
    drop: bool = False

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Fault:
        """Raises ValueError with what is wrong."""
        unknown = set(body) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
        fault = cls(**body)
        if fault.endpoint not in (*ENDPOINTS, FLOWS_ENDPOINT):
            raise ValueError(f"endpoint must be one of {', '.join((*ENDPOINTS, FLOWS_ENDPOINT))}")
        if (
            not 0 <= fault.rate <= 1
            or fault.latency_s < 0
            or fault.answer_latency_s < 0
            or (fault.count is not None and (not isinstance(fault.count, int) or fault.count < 1))
        ):
            raise ValueError("rate is 0 to 1, latency_s and answer_latency_s >= 0, count >= 1")
        if fault.status is not None and not 400 <= fault.status <= 599:
            raise ValueError("status is an HTTP error status, 400 to 599")
        return fault


def endpoint_of(path: str) -> str:
    if path.startswith("/whatsapp_business/attachments"):
        return "download"
    last = path.rstrip("/").rsplit("/", 1)[-1]
    return {
        "messages": "messages",
        "media": "media",
        "message_templates": "templates",
        "whatsapp_business_profile": "profile",
    }.get(last, "node")


@dataclass
class Faults:
    seed: int = 0
    faults: list[Fault] = field(default_factory=list)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """No faults, and the RNG back at its seed: a reset run replays the first."""
        self.faults.clear()
        self.rng = random.Random(self.seed)  # noqa: S311 - faults, not secrets

    def pick(self, path: str) -> Fault | None:
        """The fault this request meets, if any (the first that applies and hits)."""
        return self.pick_for(endpoint_of(path))

    def pick_for(self, endpoint: str) -> Fault | None:
        for fault in self.faults:
            if fault.endpoint != endpoint and (fault.endpoint != "*" or endpoint == FLOWS_ENDPOINT):
                continue
            if self.rng.random() >= fault.rate:
                continue
            if fault.count is not None:
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
            return fault
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [asdict(fault) for fault in self.faults]
