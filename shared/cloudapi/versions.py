"""Graph API versions: when each was released and until when Meta serves it (Meta's "Graph API
Changelog", its table of available versions, read 2026-12-04). Pure.

wapipe's default is the newest. Meta answers a call to a version past its end of life as a call
to the oldest version still available ("Platform Versioning"), so an old version keeps working but
behaves as a newer one; a version never released is refused.
"""

from __future__ import annotations

from datetime import date
from typing import Final, Literal

# version -> (released, available until; None: not announced yet)
VERSIONS: Final[dict[str, tuple[date, date | None]]] = {
    "v26.0": (date(2026, 7, 29), None),
    "v25.0": (date(2026, 2, 18), date(2028, 7, 29)),
    "v24.0": (date(2025, 10, 8), date(2028, 2, 18)),
    "v23.0": (date(2025, 5, 29), date(2027, 10, 8)),
    "v22.0": (date(2025, 1, 21), date(2027, 5, 20)),
    "v21.0": (date(2024, 10, 2), date(2027, 1, 21)),
    "v20.0": (date(2024, 5, 21), date(2026, 9, 24)),
    "v19.0": (date(2024, 1, 23), date(2026, 5, 21)),
    "v18.0": (date(2023, 9, 12), date(2026, 1, 26)),
    "v17.0": (date(2023, 5, 23), date(2025, 9, 12)),
    "v16.0": (date(2023, 2, 2), date(2025, 5, 14)),
}
DEFAULT_GRAPH_VERSION: Final = "v26.0"

Availability = Literal["available", "expired", "unknown"]


def availability(version: str, today: date) -> Availability:
    known = VERSIONS.get(version)
    if known is None:
        return _older_than_table(version)
    released, until = known
    if today < released:
        return "unknown"
    return "expired" if until is not None and today >= until else "available"


def _older_than_table(version: str) -> Availability:
    """Versions before the table's oldest were all retired long ago; others never existed."""
    try:
        major = float(version.removeprefix("v"))
    except ValueError:
        return "unknown"
    return "expired" if version.startswith("v") and major < 16 else "unknown"
