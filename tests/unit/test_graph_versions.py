"""Graph versions as Meta's changelog lists them (shared/cloudapi/versions.py)."""

from __future__ import annotations

from datetime import date

from wapipe.shared.cloudapi.versions import DEFAULT_GRAPH_VERSION, VERSIONS, availability
from wapipe.shared.settings import Settings

TODAY = date(2026, 12, 4)


def test_the_default_is_the_newest_released_version() -> None:
    released = [v for v, (start, _) in VERSIONS.items() if start <= TODAY]
    assert max(released, key=lambda v: float(v[1:])) == DEFAULT_GRAPH_VERSION
    assert Settings().graph_version == DEFAULT_GRAPH_VERSION


def test_versions_are_available_until_their_end_of_life() -> None:
    assert availability("v21.0", TODAY) == "available"
    assert availability("v21.0", date(2027, 1, 21)) == "expired"
    assert availability("v20.0", TODAY) == "expired"  # ended 2026-09-24
    assert availability("v2.8", TODAY) == "expired"
    assert availability("v99.0", TODAY) == "unknown"
    assert availability("v26.0", date(2026, 7, 1)) == "unknown"  # not released yet
