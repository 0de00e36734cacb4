"""The Cloud API's error answers, as the sandbox gives them.

Shapes and HTTP statuses from the sample answers in tests/data/cloudapi/responses/err_*.json
and docs/cloudapi/sending.md, errors.md: ``{"error": {"message": "(#<code>) <title>", "type",
"code", "error_subcode"?, "error_data": {"messaging_product": "whatsapp", "details"},
"fbtrace_id"}}``. Build logic on ``code``; the HTTP status follows Meta's table (throttling codes
answer 400, not 429). Where the sample answers and Meta's table differ (131000 and 132001: 400
in the samples, 500 and 404 in the table), the samples win: they are what wapipe is tested
against.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Final

# code -> (HTTP status, title), from docs/cloudapi/errors.md.
CODES: Final[dict[int, tuple[int, str]]] = {
    0: (401, "AuthException"),
    1: (400, "API Unknown"),
    2: (503, "API Service"),
    3: (500, "API Method"),
    4: (400, "Application request limit reached"),
    10: (403, "Permission Denied"),
    33: (400, "Parameter value is not valid"),
    200: (403, "API Permission"),
    368: (403, "Temporarily blocked for policies violations"),
    130472: (400, "User's number is part of an experiment"),
    130497: (403, "Business account is restricted from messaging users in this country"),
    131021: (400, "Recipient cannot be sender"),
    131030: (400, "Recipient phone number not in allowed list"),
    131031: (403, "Business Account locked"),
    131037: (400, "WhatsApp provided number needs display name approval"),
    131042: (400, "Business eligibility payment issue"),
    131045: (400, "Incorrect certificate"),
    131048: (400, "Spam rate limit hit"),
    131049: (400, "Message not delivered to maintain healthy ecosystem engagement"),
    131052: (400, "Media download error"),
    131053: (400, "Media upload error"),
    131062: (400, "Business-scoped user ID recipient not supported"),
    131063: (400, "Marketing templates disabled on the Cloud API"),
    131064: (400, "Messaging limit reached"),
    132005: (400, "Translated text too long"),
    132007: (400, "Template format character policy violated"),
    132008: (400, "Template parameter format mismatch"),
    132012: (400, "Template parameter format mismatch"),
    132015: (400, "Template is paused"),
    132016: (400, "Template is disabled"),
    132068: (400, "Flow is in blocked state"),
    132069: (400, "Flow is in throttled state"),
    133004: (503, "Server temporarily unavailable"),
    135000: (400, "Generic user error"),
    100: (400, "Invalid parameter"),
    190: (401, "Access token has expired"),
    80007: (400, "Rate limit issues"),
    130429: (400, "Rate limit hit"),
    131000: (400, "Something went wrong"),
    131005: (403, "Access denied"),
    131008: (400, "Required parameter is missing"),
    130403: (400, "Business has blocked the user"),
    131009: (400, "Parameter value is not valid"),
    131016: (503, "Service unavailable"),
    131026: (400, "Message undeliverable"),
    131047: (400, "Re-engagement message"),
    131050: (400, "User stopped marketing messages"),
    131051: (400, "Unsupported message type"),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit"),
    131057: (500, "Account in maintenance mode"),
    139100: (400, "Failed to block/unblock users"),
    139101: (400, "Blocklist limit reached"),
    132000: (400, "Number of parameters does not match the expected number of params"),
    132001: (400, "Template name does not exist in the translation"),
    133010: (400, "Phone number not registered"),
}


@dataclass(frozen=True)
class GraphError(Exception):
    """An error the sandbox answers with (sync) or reports in a failed status (async)."""

    code: int
    details: str | None  # None: no error_data, as in auth errors
    subcode: int | None = None
    error_type: str = "OAuthException"
    message: str | None = None  # instead of "(#<code>) <title>", as code 190 has

    @property
    def http_status(self) -> int:
        return CODES.get(self.code, (400, ""))[0]

    @property
    def title(self) -> str:
        return CODES.get(self.code, (400, "Error"))[1]

    def response_body(self) -> dict[str, Any]:
        """The body of a synchronous error answer."""
        error: dict[str, Any] = {
            "message": self.message or f"(#{self.code}) {self.title}",
            "type": self.error_type,
            "code": self.code,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        if self.details is not None:
            error["error_data"] = {"messaging_product": "whatsapp", "details": self.details}
        error["fbtrace_id"] = secrets.token_urlsafe(8)
        return {"error": error}

    def status_error(self) -> dict[str, Any]:
        """The object in a failed status's ``errors[]`` (docs/cloudapi/statuses.md)."""
        return {
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": {"details": self.details or self.title},
            "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
        }


def token_invalid() -> GraphError:
    return GraphError(
        190,
        None,
        subcode=463,
        message="Error validating access token: Session has expired or the token is invalid.",
    )


def unknown_object(node_id: str) -> GraphError:
    """What Graph answers for an id it does not know, or may not show (code 100, subcode 33)."""
    return GraphError(
        100,
        f"Object with ID '{node_id}' does not exist, cannot be loaded due to missing "
        "permissions, or does not support this operation",
        subcode=33,
        error_type="GraphMethodException",
    )


def invalid_parameter(details: str) -> GraphError:
    return GraphError(100, details)


def missing_parameter(details: str) -> GraphError:
    return GraphError(131008, details)


def invalid_value(details: str) -> GraphError:
    return GraphError(131009, details)


def unsupported_type(details: str) -> GraphError:
    return GraphError(131051, details)


def template_missing(name: str, language: str) -> GraphError:
    return GraphError(132001, f"template name ({name}) does not exist in {language}")


def template_parameter_count(details: str) -> GraphError:
    return GraphError(132000, details)
