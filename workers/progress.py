"""A message's delivery state from its status updates, however they arrive. Pure.

The status worker's core. Statuses come duplicated and out of order (read before delivered,
delivered before sent; docs/cloudapi/statuses.md), so the state is a join over the updates seen,
the same whatever their order:

- the furthest forward status: accepted < sent < delivered < read < played;
- the failure, if a ``failed`` status came (with several, the lowest code, so the choice does not
  depend on order).

The status shown is ``failed`` unless the message got further than ``sent`` anyway (a
multi-device user's late ``delivered``, docs/cloudapi/webhooks.md), which is then shown and flagged.
A status wapipe does not know (Meta adds them without notice) moves nothing; the caller keeps it in
the history all the same.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

RANK: Final = {"accepted": 0, "sent": 1, "delivered": 2, "read": 3, "played": 4}
FAILED: Final = "failed"


@dataclass(frozen=True, order=True)
class Failure:
    code: int
    title: str | None = None
    details: str | None = None


@dataclass(frozen=True)
class Progress:
    furthest: str | None = None  # the furthest forward status seen
    failure: Failure | None = None

    @property
    def status(self) -> str:
        reached = RANK[self.furthest] if self.furthest else -1
        if self.failure is not None and reached <= RANK["sent"]:
            return FAILED
        return self.furthest or "accepted"

    @property
    def delivered_despite_failure(self) -> bool:
        return self.failure is not None and self.status != FAILED


UNKNOWN_FAILURE: Final = Failure(code=0)


def advance(current: Progress | None, status: str, failure: Failure | None = None) -> Progress:
    """The state after one more status update; a repeat changes nothing."""
    current = current or Progress()
    if status == FAILED:
        seen = failure or UNKNOWN_FAILURE
        kept = seen if current.failure is None else min(current.failure, seen)
        return replace(current, failure=kept)
    if status not in RANK:
        return current
    if current.furthest is None or RANK[status] > RANK[current.furthest]:
        return replace(current, furthest=status)
    return current
