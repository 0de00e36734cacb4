"""The migrations are one line: each revision once, each revising the one before (two branches
that each add a migration on the same head would otherwise reach main as two heads)."""

from __future__ import annotations

import re
from pathlib import Path

VERSIONS = Path(__file__).resolve().parents[2] / "shared" / "storage" / "migrations" / "versions"


def declared(path: Path, name: str) -> str | None:
    found = re.search(rf'^{name}: [^=]+= "?([0-9A-Za-z_]+)"?$', path.read_text(), re.M)
    value = found.group(1) if found else None
    return None if value == "None" else value


def test_the_migrations_form_one_line_in_file_order() -> None:
    files = sorted(VERSIONS.glob("[0-9][0-9][0-9][0-9]_*.py"))
    revisions = [declared(path, "revision") for path in files]
    parents = [declared(path, "down_revision") for path in files]
    assert revisions == [path.name[:4] for path in files]
    assert parents == [None, *revisions[:-1]]
