"""The Cloud API error table, code by code from tests/data/cloudapi/FACTS.md section 4 (a copy
of the team's notes, kept as data), and error bodies."""

from __future__ import annotations

import re

import pytest

from tests.helpers import cloudapi_dir
from wapipe.shared.cloudapi.errors import (
    AuthError,
    CloudApiError,
    Kind,
    PermanentError,
    RateLimited,
    Scope,
    TransientError,
    classify,
    error_from_response,
    error_without_code,
)

CLASSES = {"auth": Kind.AUTH, "permanent": Kind.PERMANENT, "rate": Kind.RATE_LIMITED}
CLASSES["transient"] = Kind.TRANSIENT


def kit_table() -> list[tuple[int, Kind, bool]]:
    """(code, kind, account-wide) for every code in tests/data/cloudapi/FACTS.md section 4."""
    text = (cloudapi_dir() / "FACTS.md").read_text()
    section = text.split("## 4.", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if len(cells) < 3 or not re.match(r"^\d", cells[0]):
            continue
        codes, kinds = cells[0].split(" / "), cells[2].split(" / ")
        for index, code_text in enumerate(codes):
            kind_text = kinds[min(index, len(kinds) - 1)]
            low, _, high = code_text.partition("-")
            for code in (int(low), int(high or low)):
                word = kind_text.split(" ")[0]
                rows.append((code, CLASSES[word], "(account)" in kind_text))
    return rows


KIT = kit_table()


def test_the_kit_table_was_read_whole() -> None:
    assert len(KIT) > 45
    assert (131056, Kind.RATE_LIMITED, False) in KIT


@pytest.mark.parametrize(("code", "kind", "account_wide"), KIT, ids=[str(row[0]) for row in KIT])
def test_every_code_of_the_kit_is_classified_as_it_says(
    code: int, kind: Kind, account_wide: bool
) -> None:
    rule = classify(code, 400)
    assert rule.kind is kind
    assert (rule.scope is Scope.ACCOUNT) is account_wide


@pytest.mark.parametrize(
    ("code", "scope"),
    [(4, Scope.APP), (80007, Scope.WABA), (130429, Scope.NUMBER), (131056, Scope.RECIPIENT)],
)
def test_rate_limits_say_what_to_slow(code: int, scope: Scope) -> None:
    assert classify(code).scope is scope


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (500, Kind.TRANSIENT),
        (503, Kind.TRANSIENT),
        (None, Kind.TRANSIENT),
        (429, Kind.RATE_LIMITED),
        (401, Kind.AUTH),
        (403, Kind.AUTH),
        (400, Kind.PERMANENT),
        (404, Kind.PERMANENT),
    ],
)
def test_an_unknown_code_is_judged_by_its_http_status(status: int | None, kind: Kind) -> None:
    assert classify(999_999, status).kind is kind
    assert classify(None, status).kind is kind


SAMPLES = [
    ("err_100_invalid_parameter.json", 400, PermanentError, 100),
    ("err_130429_throughput.json", 400, RateLimited, 130429),
    ("err_131000_generic.json", 400, TransientError, 131000),
    ("err_131047_window.json", 400, PermanentError, 131047),
    ("err_131056_pair_rate.json", 400, RateLimited, 131056),
    ("err_132001_template_missing.json", 400, PermanentError, 132001),
    ("err_190_token_expired.json", 401, AuthError, 190),
    ("err_80007_waba_rate.json", 400, RateLimited, 80007),
]


@pytest.mark.parametrize(("name", "status", "kind", "code"), SAMPLES)
def test_each_sample_error_body_becomes_its_typed_error(
    name: str, status: int, kind: type[CloudApiError], code: int
) -> None:
    error = error_from_response(status, (cloudapi_dir() / "responses" / name).read_bytes())
    assert type(error) is kind
    assert error.code == code
    assert error.http_status == status
    assert error.fbtrace_id
    assert error.message


def test_an_error_keeps_subcode_details_and_a_title_without_the_code_prefix() -> None:
    expired = error_from_response(
        401, (cloudapi_dir() / "responses" / "err_190_token_expired.json").read_bytes()
    )
    assert expired.subcode == 463
    pair = error_from_response(
        400, (cloudapi_dir() / "responses" / "err_131056_pair_rate.json").read_bytes()
    )
    assert pair.title == "(Business Account, Consumer Account) pair rate limit hit"
    assert pair.details is not None
    assert pair.details.startswith("Message failed to send")


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (502, b"<html>Bad Gateway</html>", TransientError),
        (400, b"", PermanentError),
        (429, b"slow down", RateLimited),
    ],
)
def test_a_body_that_is_not_metas_is_judged_by_status(
    status: int, body: bytes, kind: type[CloudApiError]
) -> None:
    error = error_from_response(status, body)
    assert type(error) is kind
    assert error.code is None
    assert str(status) in str(error)


def test_a_timeout_is_transient() -> None:
    assert isinstance(error_without_code("timed out"), TransientError)


def test_a_media_look_up_with_its_size_as_a_string_is_read() -> None:
    from wapipe.shared.cloudapi.client import MediaInfo, _media_decoder

    body = b'{"id": "1", "url": "https://x", "file_size": "12345", "sha256": "ab"}'
    info: MediaInfo = _media_decoder.decode(body)
    assert info.size_bytes == 12345
