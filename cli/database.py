"""The database a read command reads: it must be there already. ``wapipe jobs``, ``conversation``,
and ``report`` run from another folder would otherwise create an empty SQLite
file there and report nothing found. ``templates show`` shows no history then."""

from __future__ import annotations

from pathlib import Path

from wapipe.cli.errors import UNREACHABLE, CommandError


def stored(database_url: str) -> bool:
    """Whether the database is there (a server's always is: only a SQLite file can be missing)."""
    try:
        existing(database_url)
    except CommandError:
        return False
    return True


def existing(database_url: str) -> str:
    """``database_url``, if its database exists; else a CommandError naming where it looked."""
    from wapipe.shared.storage.database import is_sqlite, resolve_url

    url = resolve_url(database_url)
    if is_sqlite(url) and url.database not in (None, "", ":memory:"):
        path = Path(str(url.database))
        if not path.exists():
            raise CommandError(
                f"no database at {path} (WAPIPE_DATABASE_URL): run this in the folder "
                "`wapipe up` runs in, or set WAPIPE_DATABASE_URL to the database",
                UNREACHABLE,
            )
    return database_url
