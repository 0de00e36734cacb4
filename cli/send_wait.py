"""``wapipe send --wait[=STATUS]``: follow one job from its publish to the status asked for. Pure:
``Watch.heard`` is given each event (its routing key and body) and says what to print.

    outbound.accepted  (key)     the sender's answer: the message's wamid; ``accepted`` ends here
    outbound.failed    (key)     the sender failed it, or a failed status came for its wamid
    status.<status>    (wamid)   sent, delivered, read from the webhooks; failed ends it too

Statuses of the message may arrive before its acceptance (they are kept until the wamid is
known) and in any order (Meta's webhooks are not ordered): the watch ends at the first status
at or beyond the one asked for. A failure carries the Cloud API's code and title, e.g.
``131026 Message undeliverable`` or ``131047 Re-engagement message``.
"""

from __future__ import annotations

from typing import Final

import msgspec

from wapipe.shared.schemas.outbound import OutboundAccepted, OutboundFailed, outbound_decoder
from wapipe.shared.schemas.webhook_base import WebhookStruct

WAIT_STATUSES: Final = ("accepted", "sent", "delivered", "read")
RANK: Final = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "played": 3}


class _StatusError(WebhookStruct, frozen=True, kw_only=True):
    code: int | None = None
    title: str | None = None


class _Status(WebhookStruct, frozen=True, kw_only=True):
    id: str
    status: str
    errors: tuple[_StatusError, ...] = ()


class _Event(msgspec.Struct, frozen=True):
    payload: msgspec.Raw


_event: Final = msgspec.json.Decoder(_Event)
_status: Final = msgspec.json.Decoder(_Status)


class Watch:
    """One job followed up to ``wait_for``; ``done`` once there, or once it failed."""

    def __init__(self, key: str, wait_for: str) -> None:
        self.key = key
        self.wait_for = wait_for
        self.wamid: str | None = None
        self.reached: str | None = None
        self.failure: str | None = None  # "131026 Message undeliverable", when it failed
        self._early: list[_Status] = []  # statuses heard before the wamid was known

    @property
    def done(self) -> bool:
        return self.failure is not None or (
            self.reached is not None and RANK[self.reached] >= RANK[self.wait_for]
        )

    def heard(self, routing_key: str, body: bytes) -> list[str]:
        """The lines to print for this event (none if it is not about our job)."""
        try:
            if routing_key.startswith("outbound."):
                return self._outbound(outbound_decoder.decode(body))
            if routing_key.startswith("status."):
                return self._statuses([_status.decode(_event.decode(body).payload)])
        except msgspec.DecodeError:
            return []  # another publisher's event; not ours to judge
        return []

    def _outbound(self, event: OutboundAccepted | OutboundFailed) -> list[str]:
        if event.key != self.key or self.done:
            return []
        if isinstance(event, OutboundFailed):
            code = f"{event.code} " if event.code is not None else ""
            details = f" ({event.details})" if event.details else ""
            self.failure = f"{code}{event.title}".strip()
            return [f"failed at {event.stage}: {code}{event.title}{details}"]
        self.wamid = event.wamid
        self.reached = "accepted"
        lines = [f"accepted: {event.wamid} to {event.wa_id or event.to}"]
        early, self._early = self._early, []
        return lines + self._statuses(early)

    def _statuses(self, statuses: list[_Status]) -> list[str]:
        lines: list[str] = []
        for status in statuses:
            if self.wamid is None:
                self._early.append(status)
                continue
            if status.id != self.wamid or self.done:
                continue
            if status.status == "failed":
                error = status.errors[0] if status.errors else _StatusError()
                code = f"{error.code} " if error.code is not None else ""
                self.failure = f"{code}{error.title or 'failed'}".strip()
                lines.append(f"failed: {self.failure}")
            elif status.status in RANK and RANK[status.status] > RANK[self.reached or "accepted"]:
                self.reached = status.status
                lines.append(status.status)
        return lines
