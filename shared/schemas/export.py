"""Writes the published contracts from the code: ``python -m shared.schemas.export``.

    schemas/<contract>.schema.json   the JSON Schema of each contract (payloads.py)
    docs/asyncapi.json               the AsyncAPI document of the broker (asyncapi.py)

``--check`` writes nothing and exits 1 naming the files that differ (the unit tests do the same),
so a Struct or the topology changed without regenerating fails CI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

from wapipe.shared.schemas.asyncapi import document
from wapipe.shared.schemas.payloads import CONTRACTS, json_schema

ROOT: Final = Path(__file__).resolve().parents[2]
SCHEMAS_DIR: Final = "schemas"
ASYNCAPI_FILE: Final = "docs/asyncapi.json"


def render(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def generated() -> dict[str, str]:
    """Each file's path under the repository, and the text it should hold."""
    files = {
        f"{SCHEMAS_DIR}/{c.file}": render(json_schema(c)) for c in CONTRACTS if c.file is not None
    }
    files[ASYNCAPI_FILE] = render(document(version("wapipe")))
    return files


def stale(root: Path = ROOT) -> list[str]:
    """The files that are missing or differ from what the code generates."""
    return [
        name
        for name, text in generated().items()
        if not (root / name).is_file() or (root / name).read_text(encoding="utf-8") != text
    ]


def write(root: Path = ROOT) -> list[str]:
    written = []
    for name, text in generated().items():
        path = root / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            written.append(name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.schemas.export", description=__doc__)
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        names = stale()
        for name in names:
            print(f"{name} is stale: run python -m shared.schemas.export", file=sys.stderr)
        return 1 if names else 0
    for name in write():
        print(f"wrote {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
