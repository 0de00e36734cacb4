"""The block-users API over the client: block, unblock, and the blocklist page after page.

Facts in docs/cloudapi/blocking.md (Meta's "Block users" page): at most 1,000 users a request,
64,000 on the list; only customers who wrote in the last 24 hours can be blocked. Results are
per user: when some fail, Meta answers HTTP 400 with error 139100 and the same ``block_users``
lists in the body, so that answer is read as a result (the users that failed carry their
errors), not raised.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import msgspec

from wapipe.shared.cloudapi.client import CloudApi
from wapipe.shared.cloudapi.errors import CloudApiError, error_without_code

USERS_PER_REQUEST: Final = 1_000
BLOCKLIST_MAX: Final = 64_000
SOME_FAILED: Final = 139100
PAGE_SIZE: Final = 100


class UserError(msgspec.Struct, frozen=True):
    code: int | None = None
    message: str = ""
    details: str | None = None


class BlockedUser(msgspec.Struct, frozen=True):
    input: str | None = None  # the user as the request named them
    wa_id: str | None = None
    user_id: str | None = None  # a BSUID
    errors: tuple[UserError, ...] = ()

    @property
    def who(self) -> str:
        return self.input or self.wa_id or self.user_id or "?"

    @property
    def reason(self) -> str:
        """The first error, one line: ``(131047) Re-engagement required: ...``."""
        if not self.errors:
            return "no reason given"
        error = self.errors[0]
        text = f"({error.code}) {error.message}" if error.code is not None else error.message
        return f"{text}: {error.details}" if error.details else text


class BlockResult(msgspec.Struct, frozen=True):
    added_users: tuple[BlockedUser, ...] = ()  # unblocking answers removed_users
    removed_users: tuple[BlockedUser, ...] = ()
    failed_users: tuple[BlockedUser, ...] = ()

    @property
    def done(self) -> tuple[BlockedUser, ...]:
        return self.added_users + self.removed_users


class _Answer(msgspec.Struct):
    block_users: BlockResult = BlockResult()


class _Cursors(msgspec.Struct, frozen=True):
    after: str | None = None


class _Paging(msgspec.Struct, frozen=True):
    cursors: _Cursors = _Cursors()
    next: str | None = None


class _ListEntry(msgspec.Struct):
    block_users: tuple[BlockedUser, ...] = ()
    wa_id: str | None = None  # some answers list users flat
    user_id: str | None = None


class _ListPage(msgspec.Struct):
    data: tuple[_ListEntry, ...] = ()
    paging: _Paging = _Paging()


def _result(answer: dict[str, Any] | bytes) -> BlockResult:
    try:
        if isinstance(answer, bytes):
            return msgspec.json.decode(answer, type=_Answer).block_users
        return msgspec.convert(answer, _Answer).block_users
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise error_without_code(f"block users: an answer of an unexpected shape: {exc}") from exc


async def block(
    api: CloudApi, phone_number_id: str, users: Sequence[str], *, unblock: bool = False
) -> BlockResult:
    """Block (or unblock) ``users`` (phone numbers, wa_ids or BSUIDs); the users that failed
    are in ``failed_users``. Raises ``ValueError`` for more than Meta takes at once, and the
    ``CloudApiError`` of a refusal that is not per user."""
    if not users:
        return BlockResult()
    if len(users) > USERS_PER_REQUEST:
        raise ValueError(f"at most {USERS_PER_REQUEST:,} users a request, not {len(users):,}")
    try:
        return _result(await api.block_users(phone_number_id, users, unblock=unblock))
    except CloudApiError as error:
        if error.code == SOME_FAILED and error.answer:
            return _result(error.answer)
        raise


async def blocked(api: CloudApi, phone_number_id: str) -> list[BlockedUser]:
    """The whole blocklist, following its cursors."""
    found: list[BlockedUser] = []
    after: str | None = None
    while True:
        params = {"limit": str(PAGE_SIZE), **({"after": after} if after else {})}
        answer = await api.blocked_users(phone_number_id, **params)
        try:
            page = msgspec.convert(answer, _ListPage)
        except msgspec.ValidationError as exc:
            raise error_without_code(f"blocklist: an answer of an unexpected shape: {exc}") from exc
        for entry in page.data:
            found += entry.block_users or [BlockedUser(wa_id=entry.wa_id, user_id=entry.user_id)]
        after = page.paging.cursors.after
        if page.paging.next is None or not page.data or not after:
            return found
