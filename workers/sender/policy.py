"""What the sender does about a refused send: one pure decision per Cloud API error.

    error (shared/cloudapi/errors.py)            decision
    OutcomeUnknown, a send                       Unknown: may have been sent; settled, never resent
    OutcomeUnknown, a read receipt               Retry: harmless twice
    130429, 131048 (the number's throughput)     Slow(NUMBER): the number waits, then goes slower
    131056 (the pair rate)                       Slow(RECIPIENT): that recipient backs off
    131064 (the day's messaging limit)           Hold: that recipient waits DAY_LIMIT_DELAY_S
    4, 80007, other rate limits                  Pause: the number, 1, 4, 16 ... s, at most 300
    an auth error, or an account-wide block      Pause: the number, WAPIPE_SENDER_PAUSE_S doubling
                                                 up to 900, the token file read again
    130403 (the business blocked the customer)   Fail: final while the block stands
    any other permanent error                    Fail, with the code and title
    transient (131000, 5xx, transport)           Retry after a back-off; Fail after max_attempts

``strikes``: the number's pauses since its last accepted send; ``attempts``: the job's transient
failures so far. Every decision but ``Unknown`` and ``Fail`` puts the job back in its line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from wapipe.shared.cloudapi.errors import (
    AuthError,
    CloudApiError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    Scope,
)
from wapipe.shared.schemas.jobs import Job, MarkReadJob
from wapipe.workers.pacing import backoff_s
from wapipe.workers.sender.events import title

ACCOUNT_PAUSE_MAX_S: Final = 300.0  # the longest pause after app or WABA rate limits (4, 80007)
AUTH_PAUSE_MAX_S: Final = 900.0  # a token refused again and again: the pause doubles up to this
DAY_LIMIT_DELAY_S: Final = 900.0  # a recipient held after 131064 (the day's messaging limit)


@dataclass(frozen=True)
class Retry:
    """A transient failure: the job's next try after ``delay_s`` (its attempts counted)."""

    delay_s: float


@dataclass(frozen=True)
class Hold:
    """Its recipient waits ``delay_s``; the job is tried again then."""

    delay_s: float


@dataclass(frozen=True)
class Slow:
    """Over a rate: the number (``Scope.NUMBER``) or the recipient (``Scope.RECIPIENT``) backs
    off by its own arithmetic (workers/pacing.py); the job is tried again."""

    scope: Scope


@dataclass(frozen=True)
class Pause:
    """Nothing leaves the number for ``seconds``; then one probe. ``reload_token``: the access
    token may have been rotated (its file is read again)."""

    seconds: float
    reason: str
    reload_token: bool = False


@dataclass(frozen=True)
class Fail:
    title: str
    code: int | None
    details: str | None


@dataclass(frozen=True)
class Unknown:
    """The call may have reached Meta: the job is never sent again, its status settles it."""

    title: str | None
    details: str


Decision = Retry | Hold | Slow | Pause | Fail | Unknown


def decide(
    error: CloudApiError,
    job: Job,
    attempts: int,
    strikes: int,
    *,
    max_attempts: int,
    auth_pause_s: float,
) -> Decision:
    if isinstance(error, OutcomeUnknown):
        if isinstance(job, MarkReadJob):
            return Retry(backoff_s(attempts + 1))
        return Unknown(error.title, error.message)
    if isinstance(error, RateLimited):
        return _rate_limited(error, strikes)
    if isinstance(error, AuthError) or (
        isinstance(error, PermanentError) and error.scope is Scope.ACCOUNT
    ):
        seconds = min(AUTH_PAUSE_MAX_S, auth_pause_s * 2.0**strikes)
        return Pause(seconds, f"{error.code}: {error.title}", reload_token=True)
    if isinstance(error, PermanentError) or attempts + 1 >= max_attempts:
        return Fail(title(error), error.code, error.details)
    return Retry(backoff_s(attempts + 1))  # transient: Meta said it did not happen


def _rate_limited(error: RateLimited, strikes: int) -> Decision:
    if error.scope in (Scope.NUMBER, Scope.RECIPIENT):
        return Slow(error.scope)
    if error.scope is Scope.DAY:
        return Hold(DAY_LIMIT_DELAY_S)
    # The app's or the WABA's calls: the whole number waits, longer each time.
    return Pause(min(ACCOUNT_PAUSE_MAX_S, 4.0**strikes), f"rate limit {error.code}")
