"""The account commands are registered without loading their work."""

from __future__ import annotations

import subprocess
import sys

from wapipe.cli.analytics import KINDS
from wapipe.cli.analytics.query import KINDS as ANALYTICS_KINDS


def test_the_parsers_offer_every_analytics_kind() -> None:
    assert KINDS == ANALYTICS_KINDS


def test_the_wapipe_command_loads_no_table_chart_or_database_library() -> None:
    code = (
        "import sys, wapipe.cli.main as main; main.build_parser(); "
        "print(sorted(m for m in ('rich', 'matplotlib', 'sqlalchemy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert loaded.strip() == "[]"
