"""The Cloud API client: one aiohttp session per process, our retry policy, typed errors.

    async with CloudApi(GraphConfig.from_settings(settings)) as api:
        accepted = await api.send_message(phone_number_id, {"to": ..., "type": "text", ...})

- Bearer auth with ``WAPIPE_ACCESS_TOKEN``; ``WAPIPE_GRAPH_URL``/``WAPIPE_GRAPH_VERSION`` as base.
- A bounded pool (``WAPIPE_GRAPH_MAX_CONNECTIONS``) and a timeout per call.
- Retries are aiohttp-retry's, with exponential back-off and jitter, but the decision is ours
  (STYLE.md: the library's defaults retry every POST and every 5xx): a call is tried again, up to
  ``WAPIPE_GRAPH_RETRIES`` more times, when the answer is transient by the error table
  (shared/cloudapi/errors.py: 5xx, 131000, 131016, 131057) or a bare 429; when the connection
  could not be made; and, for calls that can be repeated safely (reads, deletes, uploads), when
  it broke or timed out. A send that timed out is not resent: it raises ``OutcomeUnknown``.
  Rate limits with a code (130429, 131056, 80007...) are raised at once: pacing is the caller's.
- Every error answer raises its typed ``CloudApiError``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self, TypeVar

import aiohttp
import msgspec
from aiohttp_retry import JitterRetry, RetryClient

from wapipe.shared.cloudapi.config import (
    GraphConfig as GraphConfig,  # re-exported: callers build one
)
from wapipe.shared.cloudapi.errors import (
    TABLE,
    CloudApiError,
    Kind,
    OutcomeUnknown,
    TransientError,
    error_from_response,
    error_without_code,
)
from wapipe.shared.schemas.jobs import is_bsuid

log = logging.getLogger(__name__)

RETRY_START_S: Final = 0.2  # aiohttp-retry waits start * 2**attempt: 0.4 s, 0.8 s, ... capped
RETRY_MAX_S: Final = 10.0
JITTER_S: Final = 0.5  # plus uniform(0, JITTER_S) ** 2: up to a quarter second
DOWNLOAD_CHUNK_BYTES: Final = 256 * 1024


class SentMessage(msgspec.Struct, frozen=True):
    wamid: str
    message_status: str | None = None  # "accepted", "held_for_quality_assessment" (templates)
    wa_id: str | None = None  # the recipient as Meta resolved it (a BSUID for a BSUID send)


class MediaInfo(msgspec.Struct, frozen=True):
    id: str
    url: str
    mime_type: str | None = None
    sha256: str | None = None  # hex here (base64 in webhooks)
    # documented as a string (docs/cloudapi/media.md), seen as a number
    file_size: int | str | None = None

    @property
    def size_bytes(self) -> int | None:
        try:
            return int(self.file_size) if self.file_size is not None else None
        except ValueError:
            return None


class _SentMessage(msgspec.Struct):
    id: str
    message_status: str | None = None


class _Contact(msgspec.Struct):
    wa_id: str | None = None
    user_id: str | None = None  # a send to a BSUID is answered with it instead of a wa_id


class _SendAnswer(msgspec.Struct):
    messages: list[_SentMessage]
    contacts: list[_Contact] = []


class _IdAnswer(msgspec.Struct):
    id: str


_send_decoder: Final = msgspec.json.Decoder(_SendAnswer)
_media_decoder: Final = msgspec.json.Decoder(MediaInfo)
_id_decoder: Final = msgspec.json.Decoder(_IdAnswer)
_json_decoder: Final = msgspec.json.Decoder(dict[str, Any])
_json_encoder: Final = msgspec.json.Encoder()


async def _final(response: aiohttp.ClientResponse) -> bool:
    """aiohttp-retry's question for a call that may be repeated: is this answer final (True),
    or worth another try (False)? Transient by the error table, or a 429 without a code."""
    if response.status < 400:
        return True
    error = error_from_response(response.status, await response.read())
    return not (error.kind is Kind.TRANSIENT or (response.status == 429 and error.code is None))


async def _final_once(response: aiohttp.ClientResponse) -> bool:
    """The same for a call that must not happen twice (a send): tried again only when Meta said
    it did not happen (a transient code, a 503 or a 429 without one); a 500, 502 or 504 may
    hide a send that went through."""
    if response.status < 400:
        return True
    error = error_from_response(response.status, await response.read())
    if error.code is not None:
        return error.kind is not Kind.TRANSIENT
    return response.status not in (429, 503)


def _may_have_happened(error: TransientError) -> bool:
    """A failed send Meta may have carried out anyway: a 5xx that says nothing of it (a 500,
    502 or 504 without a known code; a 503 is Meta refusing for capacity, before the work)."""
    status = error.http_status
    if status is None or status < 500:
        return False  # never reached Meta, or a transient code Meta answered with
    if error.code is not None:
        return error.code not in TABLE
    return status != 503


T = TypeVar("T")


def _decoded(decoder: msgspec.json.Decoder[T], body: bytes, what: str) -> T:
    """A success answer of the shape expected, or a typed error (never a bare ValidationError)."""
    try:
        return decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise error_without_code(f"{what}: an answer of an unexpected shape: {exc}", 200) from exc


class CloudApi:
    def __init__(self, config: GraphConfig) -> None:
        self._base = f"{config.graph_url.rstrip('/')}/{config.graph_version}"
        self._token = config.access_token
        self._token_file = config.access_token_file
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        # A large file takes as long as it takes: bound the silences, not the whole.
        self._download_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=config.timeout_s, sock_read=config.timeout_s
        )
        self._max_connections = config.max_connections
        attempts = self._attempts = config.retries + 1
        common: dict[str, Any] = {
            "attempts": attempts,
            "start_timeout": RETRY_START_S,
            "max_timeout": RETRY_MAX_S,
            "random_interval_size": JITTER_S,
            "statuses": set(),
            "retry_all_server_errors": False,  # the callback decides, by the error table
            "evaluate_response_callback": _final,
        }
        # The request never left: always safe to try again.
        self._once = JitterRetry(
            exceptions={aiohttp.ClientConnectorError},
            **{**common, "evaluate_response_callback": _final_once},
        )
        # Safe to repeat even if it reached Meta: broken or timed out, try again too.
        self._repeatable = JitterRetry(
            exceptions={aiohttp.ClientConnectionError, TimeoutError}, **common
        )
        self._session: aiohttp.ClientSession | None = None
        self._client: RetryClient | None = None

    async def __aenter__(self) -> Self:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections),
            timeout=self._timeout,
        )
        self._client = RetryClient(client_session=self._session)
        return self

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    def reload_token(self) -> bool:
        """Read the token again from ``WAPIPE_ACCESS_TOKEN_FILE`` (a rotated secret is picked
        up without a restart); True if it changed. Without a file there is nothing to reload."""
        if not self._token_file:
            return False
        try:
            token = Path(self._token_file).read_text(encoding="utf-8").strip()
        except OSError as exc:
            log.warning("cannot read the access token file", extra={"error": str(exc)})
            return False
        changed = bool(token) and token != self._token
        if changed:
            self._token = token
        return changed

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()

    # --- Messages ------------------------------------------------------------------------------

    async def send_message(self, phone_number_id: str, message: Mapping[str, Any]) -> SentMessage:
        """POST /{phone_number_id}/messages; ``message`` without ``messaging_product``."""
        try:
            body = await self._call(
                "POST",
                f"/{phone_number_id}/messages",
                json={"messaging_product": "whatsapp", **message},
                repeatable=False,
            )
        except TransientError as error:
            if _may_have_happened(error):
                raise OutcomeUnknown(
                    code=error.code, message=error.message, http_status=error.http_status
                ) from error
            raise
        try:
            answer = _send_decoder.decode(body)
        except msgspec.DecodeError as exc:  # a 200 it cannot read: most likely sent
            raise OutcomeUnknown(
                code=None, message=f"send: an answer of an unexpected shape: {exc}", http_status=200
            ) from exc
        if not answer.messages:
            raise OutcomeUnknown(
                code=None, message="send: an answer without a message id", http_status=200
            )
        contact = answer.contacts[0] if answer.contacts else None
        wa_id = (contact.wa_id or contact.user_id) if contact else None
        sent = answer.messages[0]
        return SentMessage(sent.id, sent.message_status, wa_id)

    async def mark_read(self, phone_number_id: str, wamid: str, *, typing: bool = False) -> None:
        body: dict[str, Any] = {"status": "read", "message_id": wamid}
        if typing:
            body["typing_indicator"] = {"type": "text"}
        # Marking read twice is harmless: repeatable.
        await self._call(
            "POST",
            f"/{phone_number_id}/messages",
            json={"messaging_product": "whatsapp", **body},
            repeatable=True,
        )

    # --- Media ---------------------------------------------------------------------------------

    async def media_info(self, media_id: str) -> MediaInfo:
        """GET /{media_id}: where to download it (the URL expires within minutes)."""
        return _decoded(_media_decoder, await self._call("GET", f"/{media_id}"), "media look-up")

    async def download(self, url: str) -> AsyncGenerator[bytes, None]:
        """The media's bytes, in chunks, never whole in memory. Raises as the other calls."""
        assert self._client is not None, "use CloudApi as `async with`"
        try:
            async with self._client.get(
                url,
                headers=self._auth(),
                retry_options=self._repeatable,
                timeout=self._download_timeout,
            ) as response:
                if response.status >= 400:
                    raise error_from_response(response.status, await response.read())
                async for chunk in response.content.iter_chunked(DOWNLOAD_CHUNK_BYTES):
                    yield chunk
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise error_without_code(f"download: {type(exc).__name__}: {exc}") from exc

    async def upload_media(
        self, phone_number_id: str, content: bytes | Path, mime_type: str, file_name: str
    ) -> str:
        """POST /{phone_number_id}/media; the new media id. A file is streamed from disk.

        A form is sent once, so this retries itself (same policy, a fresh form each try): an
        upload that reached Meta twice only leaves an unused id behind."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._upload_once(phone_number_id, content, mime_type, file_name)
            except CloudApiError as exc:
                retryable = exc.kind is Kind.TRANSIENT or exc.http_status == 429
                if not retryable or attempt >= self._once.attempts:
                    raise
            await asyncio.sleep(self._once.get_timeout(attempt))  # the back-off: the point

    async def _upload_once(
        self, phone_number_id: str, content: bytes | Path, mime_type: str, file_name: str
    ) -> str:
        data = aiohttp.FormData()
        data.add_field("messaging_product", "whatsapp")
        data.add_field("type", mime_type)
        if isinstance(content, bytes):
            data.add_field("file", content, filename=file_name, content_type=mime_type)
            body = await self._call("POST", f"/{phone_number_id}/media", data=data, tries=1)
            return _decoded(_id_decoder, body, "upload").id
        file = await asyncio.to_thread(content.open, "rb")
        try:
            data.add_field("file", file, filename=file_name, content_type=mime_type)
            body = await self._call("POST", f"/{phone_number_id}/media", data=data, tries=1)
        finally:
            file.close()
        return _decoded(_id_decoder, body, "upload").id

    async def delete_media(self, media_id: str) -> None:
        await self._call("DELETE", f"/{media_id}", repeatable=True)

    # --- Templates, profile, numbers, analytics ------------------------------------------------

    async def templates(self, waba_id: str, **params: str) -> dict[str, Any]:
        return await self._json("GET", f"/{waba_id}/message_templates", params=params)

    async def create_template(self, waba_id: str, template: Mapping[str, Any]) -> dict[str, Any]:
        return await self._json(
            "POST", f"/{waba_id}/message_templates", json=dict(template), repeatable=False
        )

    async def edit_template(self, template_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """POST /{template-id}: new components or category (docs/cloudapi/template-rules.md)."""
        return await self._json("POST", f"/{template_id}", json=dict(changes), repeatable=False)

    async def delete_template(
        self, waba_id: str, name: str, template_id: str | None = None
    ) -> dict[str, Any]:
        """Every language of ``name``, or only the one of ``template_id`` (Meta's ``hsm_id``)."""
        params = {"name": name, **({"hsm_id": template_id} if template_id else {})}
        return await self._json("DELETE", f"/{waba_id}/message_templates", params=params)

    async def business_profile(self, phone_number_id: str, fields: str) -> dict[str, Any]:
        path = f"/{phone_number_id}/whatsapp_business_profile"
        return await self._json("GET", path, params={"fields": fields})

    async def update_business_profile(
        self, phone_number_id: str, profile: Mapping[str, Any]
    ) -> dict[str, Any]:
        path = f"/{phone_number_id}/whatsapp_business_profile"
        body = {"messaging_product": "whatsapp", **profile}
        return await self._json("POST", path, json=body, repeatable=True)

    async def phone_numbers(self, waba_id: str, fields: str) -> dict[str, Any]:
        return await self._json("GET", f"/{waba_id}/phone_numbers", params={"fields": fields})

    async def node(self, node_id: str, fields: str) -> dict[str, Any]:
        """GET /{node_id}?fields=...: a template, a phone
        number (docs/cloudapi/templates.md, business.md)."""
        return await self._json("GET", f"/{node_id}", params={"fields": fields})

    async def template_analytics(self, waba_id: str, params: Mapping[str, str]) -> dict[str, Any]:
        path = f"/{waba_id}/template_analytics"
        return await self._json("GET", path, params=dict(params))

    async def analytics(self, waba_id: str, fields: str) -> dict[str, Any]:
        """GET /{waba_id}?fields=analytics.start(...)...: the field expression as Meta writes it."""
        return await self._json("GET", f"/{waba_id}", params={"fields": fields})

    async def block_users(
        self, phone_number_id: str, users: Sequence[str], *, unblock: bool = False
    ) -> dict[str, Any]:
        """POST (block) or DELETE (unblock) /{phone_number_id}/block_users: shared/cloudapi/
        blocking.py reads the answer. Either is harmless twice: repeatable."""
        # A BSUID goes as "user_id", a phone number as "user" (docs/cloudapi/blocking.md).
        named = [{"user_id" if is_bsuid(u) else "user": u} for u in users]
        body = {"messaging_product": "whatsapp", "block_users": named}
        method = "DELETE" if unblock else "POST"
        return await self._json(method, f"/{phone_number_id}/block_users", json=body)

    async def blocked_users(self, phone_number_id: str, **params: str) -> dict[str, Any]:
        return await self._json("GET", f"/{phone_number_id}/block_users", params=params)

    # --- The one way a call is made ------------------------------------------------------------

    async def _json(
        self, method: str, path: str, *, repeatable: bool = True, **kwargs: Any
    ) -> dict[str, Any]:
        body = await self._call(method, path, repeatable=repeatable, **kwargs)
        return _decoded(_json_decoder, body, f"{method} {path}")

    async def _call(
        self, method: str, path: str, *, repeatable: bool = True, tries: int = 0, **kwargs: Any
    ) -> bytes:
        """One call under the retry policy (``tries=1``: no retry here, the caller's own)."""
        assert self._client is not None, "use CloudApi as `async with`"
        options = self._repeatable if repeatable else self._once
        headers = self._auth()
        if "json" in kwargs:  # encoded by msgspec, not by json.dumps in an aiohttp payload
            kwargs["data"] = _json_encoder.encode(kwargs.pop("json"))
            headers["Content-Type"] = "application/json"
        if tries:
            options = JitterRetry(attempts=tries)
        # With no retry to make (the sender's client), the plain session: one layer less.
        if self._attempts == 1 and not tries:
            request = self._session.request(  # type: ignore[union-attr]
                method, self._base + path, headers=headers, **kwargs
            )
        else:
            request = self._client.request(
                method, self._base + path, retry_options=options, headers=headers, **kwargs
            )
        try:
            async with request as response:
                body = await response.read()
                if response.status >= 400:
                    raise error_from_response(response.status, body)
                return body
        except aiohttp.ClientConnectorError as exc:  # never reached Meta
            raise error_without_code(f"{method} {path}: cannot connect: {exc}") from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            text = f"{method} {path}: {type(exc).__name__}: {exc}".rstrip(": ")
            if repeatable:
                raise error_without_code(text) from exc
            raise OutcomeUnknown(code=None, message=text) from exc
