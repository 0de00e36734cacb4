"""What the services import is installed without any extra: the image installs wapipe alone
(deploy/Dockerfile), so a library that only the `cli` or `dev` extra brings would fail there."""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Final

from packaging.requirements import Requirement

REPOSITORY: Final = Path(__file__).resolve().parents[2]
SERVICE_PACKAGES: Final = ("ingress", "workers", "shared", "sandbox", "examples")


def third_party(path: Path) -> Iterator[str]:
    """The top-level modules ``path`` imports that are neither ours nor the standard library's."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            top = name.split(".")[0]
            if top != "wapipe" and top not in sys.stdlib_module_names:
                yield top


def installed_without_extras(distribution: str) -> set[str]:
    """``distribution`` and everything it requires when no extra is asked for."""
    seen: set[str] = set()
    pending = [distribution]
    while pending:
        name = pending.pop().lower().replace("_", "-")
        if name in seen:
            continue
        seen.add(name)
        try:
            requirements = metadata.requires(name) or []
        except metadata.PackageNotFoundError:  # required only elsewhere (another Python)
            continue
        for text in requirements:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return seen


def test_every_library_a_service_imports_comes_with_wapipe_alone() -> None:
    provided = installed_without_extras("wapipe")
    owners = metadata.packages_distributions()
    missing = sorted(
        f"{path.relative_to(REPOSITORY)} imports {module}"
        for package in SERVICE_PACKAGES
        for path in (REPOSITORY / package).rglob("*.py")
        for module in third_party(path)
        if not {d.lower().replace("_", "-") for d in owners.get(module, [module])} & provided
    )
    assert missing == []
