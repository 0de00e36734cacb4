"""The Cloud API client against the sandbox: each error class as the table says, retries bounded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.sandbox_support import (
    CUSTOMER,
    TOKEN,
    SandboxClient,
    open_window,
    phone_number_id,
)
from wapipe.sandbox.keys import WORLD
from wapipe.shared.cloudapi.client import CloudApi, GraphConfig
from wapipe.shared.cloudapi.errors import (
    AuthError,
    OutcomeUnknown,
    PermanentError,
    RateLimited,
    Scope,
    TransientError,
)
from wapipe.shared.settings import Settings

RETRIES = 2
TEXT: dict[str, Any] = {"to": CUSTOMER, "type": "text", "text": {"body": "hello"}}


def settings_for(sandbox: SandboxClient, **changes: Any) -> Settings:
    base = str(sandbox.make_url("")).rstrip("/")
    values: dict[str, Any] = {
        "graph_url": base,
        "access_token": TOKEN,
        "graph_retries": RETRIES,
        "graph_timeout_s": 5.0,
    }
    return Settings(**{**values, **changes})


@pytest.fixture
async def api(sandbox: SandboxClient) -> AsyncIterator[CloudApi]:
    open_window(sandbox)
    async with CloudApi(GraphConfig.from_settings(settings_for(sandbox))) as client:
        yield client


async def fault(sandbox: SandboxClient, **spec: Any) -> None:
    assert (await sandbox.post("/_sandbox/faults", json=spec)).status == 200


def calls(sandbox: SandboxClient, path_end: str) -> list[int]:
    """HTTP statuses the sandbox answered on paths ending so, in order."""
    return [r.status for r in sandbox.app[WORLD].requests if r.path.endswith(path_end)]


async def test_a_send_is_accepted_with_its_wamid(api: CloudApi, sandbox: SandboxClient) -> None:
    sent = await api.send_message(phone_number_id(sandbox), TEXT)
    assert sent.wamid.startswith("wamid.")
    assert sent.wa_id == CUSTOMER
    assert calls(sandbox, "/messages") == [200]


async def test_a_transient_code_is_retried_then_succeeds(
    api: CloudApi, sandbox: SandboxClient
) -> None:
    await fault(sandbox, endpoint="messages", code=131000, count=2)
    sent = await api.send_message(phone_number_id(sandbox), TEXT)
    assert sent.wamid
    assert calls(sandbox, "/messages") == [400, 400, 200]  # the kit: 131000 answers 400


async def test_retries_stop_at_their_bound(api: CloudApi, sandbox: SandboxClient) -> None:
    await fault(sandbox, endpoint="messages", status=503)
    with pytest.raises(TransientError) as raised:
        await api.send_message(phone_number_id(sandbox), TEXT)
    assert raised.value.http_status == 503
    assert calls(sandbox, "/messages") == [503] * (1 + RETRIES)


async def test_a_bare_429_is_retried(api: CloudApi, sandbox: SandboxClient) -> None:
    await fault(sandbox, endpoint="messages", status=429, count=1)
    assert (await api.send_message(phone_number_id(sandbox), TEXT)).wamid
    assert calls(sandbox, "/messages") == [429, 200]


@pytest.mark.parametrize(
    ("code", "error", "scope"),
    [
        (130429, RateLimited, Scope.NUMBER),
        (131056, RateLimited, Scope.RECIPIENT),
        (80007, RateLimited, Scope.WABA),
        (100, PermanentError, Scope.REQUEST),
        (131047, PermanentError, Scope.REQUEST),
        (132001, PermanentError, Scope.REQUEST),
        (190, AuthError, Scope.APP),
    ],
)
async def test_a_coded_error_is_raised_at_once_as_its_class(
    api: CloudApi, sandbox: SandboxClient, code: int, error: type[Exception], scope: Scope
) -> None:
    await fault(sandbox, endpoint="messages", code=code)
    with pytest.raises(error) as raised:
        await api.send_message(phone_number_id(sandbox), TEXT)
    assert getattr(raised.value, "code", None) == code
    assert getattr(raised.value, "scope", None) is scope
    assert getattr(raised.value, "fbtrace_id", None)
    assert len(calls(sandbox, "/messages")) == 1  # pacing and pausing are the caller's


async def test_a_wrong_token_is_an_auth_error(sandbox: SandboxClient) -> None:
    async with CloudApi(
        GraphConfig.from_settings(settings_for(sandbox, access_token="expired"))
    ) as api:
        with pytest.raises(AuthError) as raised:
            await api.send_message(phone_number_id(sandbox), TEXT)
    assert raised.value.code == 190
    assert raised.value.http_status == 401


async def test_a_send_whose_connection_drops_is_not_sent_again(
    api: CloudApi, sandbox: SandboxClient
) -> None:
    await fault(sandbox, endpoint="messages", drop=True, count=1)
    with pytest.raises(OutcomeUnknown):
        await api.send_message(phone_number_id(sandbox), TEXT)
    assert sandbox.app[WORLD].sent == {}  # no second try went through


async def test_a_send_that_times_out_is_an_unknown_outcome(sandbox: SandboxClient) -> None:
    open_window(sandbox)
    await fault(sandbox, endpoint="messages", hang=True, count=1)
    async with CloudApi(
        GraphConfig.from_settings(settings_for(sandbox, graph_timeout_s=0.5))
    ) as api:
        with pytest.raises(OutcomeUnknown):
            await api.send_message(phone_number_id(sandbox), TEXT)
    assert sandbox.app[WORLD].sent == {}


async def test_media_round_trip_with_a_dropped_look_up_retried(
    api: CloudApi, sandbox: SandboxClient
) -> None:
    content = b"%PDF-1.4 " + bytes(range(256)) * 2000  # half a megabyte
    media_id = await api.upload_media(
        phone_number_id(sandbox), content, "application/pdf", "report.pdf"
    )
    await fault(sandbox, endpoint="node", drop=True, count=1)
    info = await api.media_info(media_id)
    assert info.mime_type == "application/pdf"
    assert info.file_size == len(content)
    chunks = [chunk async for chunk in api.download(info.url)]
    assert b"".join(chunks) == content
    assert len(chunks) > 1  # streamed, not whole
    await api.delete_media(media_id)
    with pytest.raises(PermanentError):
        await api.media_info(media_id)


async def test_an_upload_retries_a_transient_failure_with_a_fresh_form(
    api: CloudApi, sandbox: SandboxClient
) -> None:
    await fault(sandbox, endpoint="media", status=503, count=1)
    media_id = await api.upload_media(phone_number_id(sandbox), b"\x89PNG", "image/png", "a.png")
    assert media_id
    assert calls(sandbox, "/media") == [503, 200]


async def test_a_local_file_is_uploaded_to_a_media_id(
    api: CloudApi, sandbox: SandboxClient, tmp_path: Path
) -> None:
    file = tmp_path / "brochure.pdf"
    file.write_bytes(b"%PDF-1.4 " + bytes(range(256)) * 4000)  # a megabyte, streamed from disk
    media_id = await api.upload_media(phone_number_id(sandbox), file, "application/pdf", file.name)
    assert sandbox.app[WORLD].media.items[media_id].content == file.read_bytes()


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_a_send_answered_a_bare_5xx_is_not_resent(
    api: CloudApi, sandbox: SandboxClient, status: int
) -> None:
    """It may have gone through: the sender settles it by its idempotency key."""
    await fault(sandbox, endpoint="messages", status=status, count=1)
    with pytest.raises(TransientError):
        await api.send_message(phone_number_id(sandbox), TEXT)
    assert calls(sandbox, "/messages") == [status]


async def test_a_look_up_answered_a_bare_500_is_retried(
    api: CloudApi, sandbox: SandboxClient
) -> None:
    media_id = await api.upload_media(phone_number_id(sandbox), b"\x89PNG", "image/png", "a.png")
    await fault(sandbox, endpoint="node", status=500, count=1)
    assert (await api.media_info(media_id)).id == media_id
    assert calls(sandbox, f"/{media_id}") == [500, 200]
