"""The command line is one package, cli/: no other package imports it or its libraries, and a
service started through it loads nothing of the other services or of the CLI's own libraries."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Final

REPOSITORY: Final = Path(__file__).resolve().parents[2]
SERVICE_PACKAGES: Final = ("ingress", "workers", "shared", "sandbox", "examples")
CLI_ONLY: Final = frozenset({"cli", "rich", "matplotlib", "yaml"})  # pyproject's `cli` extra
# The folders src/wapipe links as the one namespace (docs/layout.md).
NAMESPACE: Final = ("cli", *SERVICE_PACKAGES)


def imported(path: Path) -> Iterator[str]:
    """Every module ``path`` imports, at any depth of its code."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module


def top(name: str) -> str:
    """The package a module name belongs to, ours named without the namespace."""
    parts = name.split(".")
    return parts[1] if parts[0] == "wapipe" and len(parts) > 1 else parts[0]


def test_no_package_but_cli_imports_cli_code_or_its_libraries() -> None:
    found = [
        f"{path.relative_to(REPOSITORY)} imports {name}"
        for package in SERVICE_PACKAGES
        for path in sorted((REPOSITORY / package).rglob("*.py"))
        for name in imported(path)
        if top(name) in CLI_ONLY
    ]
    assert found == []


def test_every_import_of_our_code_goes_through_the_wapipe_namespace() -> None:
    """``import shared`` would load a second copy of a module beside ``wapipe.shared``'s (two
    settings types, two metric registries), and works only from the repository's root."""
    found = [
        f"{path.relative_to(REPOSITORY)} imports {name}"
        for package in (*NAMESPACE, "tests")
        for path in sorted((REPOSITORY / package).rglob("*.py"))
        for name in imported(path)
        if name.split(".")[0] in NAMESPACE
    ]
    assert found == []


def test_the_namespace_links_every_folder_of_code() -> None:
    linked = REPOSITORY / "src" / "wapipe"
    for package in NAMESPACE:
        assert (linked / package).resolve() == REPOSITORY / package, package


def loaded_by(argv: list[str], stub: str) -> set[str]:
    """The modules loaded once ``wapipe ARGV`` has run, with ``stub`` (``module.function``)
    replaced by a no-op so that the service returns at once."""
    module, function = stub.rsplit(".", 1)
    code = (
        f"import json, sys, {module}\n"
        f"{module}.{function} = lambda *args, **kwargs: None\n"
        "from wapipe.cli.main import main\n"
        f"main({argv!r})\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = {**os.environ, "WAPIPE_APP_SECRETS": "s", "WAPIPE_VERIFY_TOKEN": "t"}
    ran = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return set(json.loads(ran.stdout.splitlines()[-1]))


def test_wapipe_ingress_loads_no_worker_sandbox_or_cli_library() -> None:
    loaded = loaded_by(["ingress"], "wapipe.ingress.app.run")
    assert "wapipe.ingress.app" in loaded  # the stub ran where the service would
    heavy = {m for m in loaded if m.split(".")[0] in {"workers", "sandbox", *CLI_ONLY - {"cli"}}}
    assert heavy == set()
    assert {"wapipe.cli.output", "wapipe.cli.local.up", "sqlalchemy"} & loaded == set()


def test_wapipe_worker_loads_no_ingress_sandbox_or_cli_library() -> None:
    loaded = loaded_by(["worker", "status"], "wapipe.workers.main.run")
    assert "wapipe.workers.status" in loaded
    heavy = {m for m in loaded if m.split(".")[0] in {"ingress", "sandbox", *CLI_ONLY - {"cli"}}}
    assert heavy == set()
    assert "wapipe.cli.output" not in loaded
