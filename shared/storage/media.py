"""Media records: one row per media id, its state (stored or failed), where its bytes are.

A row once ``stored`` stays so (a late failure of a second download changes nothing): a media id
stored is never fetched again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any, Final

import msgspec
from sqlalchemy import Dialect, case, literal_column, select

from wapipe.shared.storage import schema
from wapipe.shared.storage.statements import (
    Connection,
    Prepared,
    columns_of,
    execute_many,
    in_ids,
    insert_for,
    prepare,
    select_in,
    struct_of,
)

STORED = "stored"
FAILED = "failed"


class MediaRow(msgspec.Struct, frozen=True, kw_only=True):
    media_id: str
    wamid: str | None
    state: str  # stored or failed
    mime_type: str | None
    file_name: str | None
    sha256: str | None  # hex
    size_bytes: int | None
    location: str | None
    error: str | None
    attempts: int
    updated_at: float


async def stored_media(connection: Connection, media_ids: Collection[str]) -> dict[str, MediaRow]:
    """The records of those of ``media_ids`` stored already."""
    rows = await select_in(connection, _STORED, sorted(media_ids))
    return {row.media_id: struct_of(MediaRow, row) for row in rows}


# Built once: compiled once by statements.select_in (the plain driver's path compiles anew
# whatever is not).
_STORED: Final = select(*columns_of(schema.media, MediaRow)).where(
    in_ids(schema.media.c.media_id), schema.media.c.state == STORED
)


async def record_media(connection: Connection, rows: Sequence[MediaRow]) -> None:
    await execute_many(connection, _merge(connection.dialect), rows, key="media_id")


@lru_cache(maxsize=8)
def _merge(dialect: Dialect) -> Prepared:
    statement = insert_for(dialect, schema.media)
    stored, new = schema.media.c, statement.excluded
    kept = stored.state == literal_column(f"'{STORED}'")  # inline: rows bind only their fields

    def unless_stored(name: str) -> Any:
        return case((kept, stored[name]), else_=new[name])

    columns = [name for name in MediaRow.__struct_fields__ if name != "media_id"]
    return prepare(
        statement.on_conflict_do_update(
            index_elements=["media_id"], set_={name: unless_stored(name) for name in columns}
        ),
        dialect,
        MediaRow,
    )
