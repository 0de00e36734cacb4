"""The Cloud API's errors: Meta's error body as a typed exception, and what each code means.

The table is docs/cloudapi/errors.md, as data: each code's ``kind`` (what the
caller does about it) and ``scope`` (what it concerns). Pure: no I/O.

    CloudApiError                 code, subcode, title, message, details, fbtrace_id, HTTP status
    ├── TransientError            try again with back-off (131000, 131016, 131057, 5xx, transport)
    │   └── OutcomeUnknown        sent, unanswered: it may have happened (settle, do not resend)
    ├── RateLimited               slow down: the app (4), the WABA (80007), the number (130429,
    │                             131048), one recipient (131056), the day's limit (131064)
    ├── AuthError                 the token or a permission: pause, keep the work, alert
    └── PermanentError            never succeeds as asked: fail it with code and title; an
                                  ``account`` scope (368, 131031, ...) means the number is stuck

A code the table does not know is judged by the HTTP status: 5xx transient, 429 rate-limited,
401/403 auth, anything else permanent (Meta's own advice: build on the code, never the text).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

import msgspec


class Kind(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    AUTH = "auth"
    PERMANENT = "permanent"


class Scope(StrEnum):
    """What an error concerns: what to retry, slow, pause or fail."""

    REQUEST = "request"  # this call only
    APP = "app"
    WABA = "waba"
    NUMBER = "number"  # the sending phone number
    RECIPIENT = "recipient"  # one customer
    ACCOUNT = "account"  # the business account: nothing goes until a person acts
    DAY = "day"  # the 24-hour messaging limit


@dataclass(frozen=True)
class Rule:
    kind: Kind
    scope: Scope


_T, _R, _A, _P = Kind.TRANSIENT, Kind.RATE_LIMITED, Kind.AUTH, Kind.PERMANENT

TABLE: Final[dict[int, Rule]] = {
    0: Rule(_A, Scope.APP),
    3: Rule(_P, Scope.REQUEST),
    4: Rule(_R, Scope.APP),
    10: Rule(_A, Scope.APP),
    100: Rule(_P, Scope.REQUEST),
    190: Rule(_A, Scope.APP),
    368: Rule(_P, Scope.ACCOUNT),
    80007: Rule(_R, Scope.WABA),
    130403: Rule(_P, Scope.REQUEST),  # this customer is blocked (docs/cloudapi/blocking.md)
    130429: Rule(_R, Scope.NUMBER),
    130472: Rule(_P, Scope.REQUEST),
    130497: Rule(_P, Scope.REQUEST),
    131000: Rule(_T, Scope.REQUEST),
    131005: Rule(_A, Scope.APP),
    131008: Rule(_P, Scope.REQUEST),
    131009: Rule(_P, Scope.REQUEST),
    131016: Rule(_T, Scope.REQUEST),
    131021: Rule(_P, Scope.REQUEST),
    131026: Rule(_P, Scope.REQUEST),
    131030: Rule(_P, Scope.REQUEST),
    131031: Rule(_P, Scope.ACCOUNT),
    131037: Rule(_P, Scope.ACCOUNT),
    131042: Rule(_P, Scope.ACCOUNT),
    131044: Rule(_P, Scope.ACCOUNT),
    131045: Rule(_P, Scope.ACCOUNT),
    131047: Rule(_P, Scope.REQUEST),
    131048: Rule(_R, Scope.NUMBER),
    131049: Rule(_P, Scope.REQUEST),
    131050: Rule(_P, Scope.REQUEST),
    131051: Rule(_P, Scope.REQUEST),
    131052: Rule(_P, Scope.REQUEST),
    131053: Rule(_P, Scope.REQUEST),
    131056: Rule(_R, Scope.RECIPIENT),
    131057: Rule(_T, Scope.REQUEST),
    131062: Rule(_P, Scope.REQUEST),
    131063: Rule(_P, Scope.REQUEST),
    131064: Rule(_R, Scope.DAY),
    132000: Rule(_P, Scope.REQUEST),
    132001: Rule(_P, Scope.REQUEST),
    132005: Rule(_P, Scope.REQUEST),
    132007: Rule(_P, Scope.REQUEST),
    132008: Rule(_P, Scope.REQUEST),
    132012: Rule(_P, Scope.REQUEST),
    132015: Rule(_P, Scope.REQUEST),
    132016: Rule(_P, Scope.REQUEST),
    132068: Rule(_P, Scope.REQUEST),
    132069: Rule(_R, Scope.REQUEST),
    135000: Rule(_P, Scope.REQUEST),
    137000: Rule(_P, Scope.REQUEST),
    # The block-users API (docs/cloudapi/blocking.md): some users not (un)blocked, the 64,000
    # blocklist full, the list changed while paging it, Meta's internal error.
    139100: Rule(_P, Scope.REQUEST),
    139101: Rule(_P, Scope.REQUEST),
    139102: Rule(_T, Scope.REQUEST),
    139103: Rule(_T, Scope.REQUEST),
}
RANGES: Final = (
    (200, 299, Rule(_A, Scope.APP)),  # API permissions
    (133000, 133016, Rule(_P, Scope.REQUEST)),  # registration and deregistration
)


def classify(code: int | None, http_status: int | None = None) -> Rule:
    """What ``code`` means; for a code not in the table, what the HTTP status says."""
    if code is not None:
        if (rule := TABLE.get(code)) is not None:
            return rule
        for low, high, ranged in RANGES:
            if low <= code <= high:
                return ranged
    if http_status is None or http_status >= 500:
        return Rule(_T, Scope.REQUEST)  # a 5xx, or no answer at all
    if http_status == 429:
        return Rule(_R, Scope.APP)
    if http_status in (401, 403):
        return Rule(_A, Scope.APP)
    return Rule(_P, Scope.REQUEST)


class CloudApiError(Exception):
    """An error answer of the Cloud API (or none at all), with everything Meta said."""

    def __init__(
        self,
        *,
        code: int | None,
        message: str,
        http_status: int | None = None,
        subcode: int | None = None,
        title: str | None = None,
        details: str | None = None,
        fbtrace_id: str | None = None,
        answer: bytes = b"",
    ) -> None:
        super().__init__(f"({code}) {message}" if code is not None else message)
        self.code = code
        self.message = message
        self.http_status = http_status
        self.subcode = subcode
        self.title = title
        self.details = details
        self.fbtrace_id = fbtrace_id
        self.answer = answer  # the whole error body (the block-users API puts results in it)
        self.rule = classify(code, http_status)

    @property
    def kind(self) -> Kind:
        return self.rule.kind

    @property
    def scope(self) -> Scope:
        return self.rule.scope


class TransientError(CloudApiError):
    pass


class OutcomeUnknown(TransientError):
    """The request went out and no answer came (a timeout, a reset): it may have taken effect.
    A send is then settled by its idempotency key, never blindly sent again
    (docs/cloudapi/errors.md)."""


class RateLimited(CloudApiError):
    pass


class AuthError(CloudApiError):
    pass


class PermanentError(CloudApiError):
    pass


_BY_KIND: Final[dict[Kind, type[CloudApiError]]] = {
    Kind.TRANSIENT: TransientError,
    Kind.RATE_LIMITED: RateLimited,
    Kind.AUTH: AuthError,
    Kind.PERMANENT: PermanentError,
}


class _ErrorData(msgspec.Struct):
    details: str | None = None


class _Error(msgspec.Struct):
    message: str = ""
    code: int | None = None
    error_subcode: int | None = None
    error_user_title: str | None = None
    type: str | None = None
    error_data: _ErrorData | None = None
    fbtrace_id: str | None = None


class _ErrorBody(msgspec.Struct):
    error: _Error


_error_decoder: Final = msgspec.json.Decoder(_ErrorBody)


def error_from_response(http_status: int, body: bytes) -> CloudApiError:
    """The typed error for an error answer; one whose body is not Meta's is judged by status."""
    try:
        error = _error_decoder.decode(body).error
    except msgspec.DecodeError:
        text = body[:200].decode("utf-8", "replace").strip()
        return error_without_code(f"HTTP {http_status}: {text or 'no body'}", http_status)
    details = error.error_data.details if error.error_data else None
    rule = classify(error.code, http_status)
    return _BY_KIND[rule.kind](
        code=error.code,
        message=error.message,
        http_status=http_status,
        subcode=error.error_subcode,
        title=error.error_user_title or _title(error.message),
        details=details,
        fbtrace_id=error.fbtrace_id,
        answer=body,
    )


def error_without_code(message: str, http_status: int | None = None) -> CloudApiError:
    """A failure with no Meta error: a bare status, a timeout, a reset connection."""
    rule = classify(None, http_status)
    return _BY_KIND[rule.kind](code=None, message=message, http_status=http_status)


def _title(message: str) -> str:
    """Meta's message without its "(#131056) " prefix."""
    if message.startswith("(#") and ") " in message:
        return message.split(") ", 1)[1]
    return message


def as_dict(error: CloudApiError) -> dict[str, Any]:
    """For logs and events: what a person needs to find the call in Meta's tools."""
    return {
        "code": error.code,
        "subcode": error.subcode,
        "kind": str(error.kind),
        "scope": str(error.scope),
        "title": error.title,
        "details": error.details,
        "fbtrace_id": error.fbtrace_id,
        "http_status": error.http_status,
    }
