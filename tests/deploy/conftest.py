"""The deploy tests' one stack: built and brought up once for the session, torn down after.

They need a Docker engine; deploy/scripts/engine.sh installs and starts one where it can (root).
Where it cannot, they skip saying why, unless WAPIPE_DEPLOY_TESTS=required (CI), then they fail.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest

from tests.deploy.stack import DEPLOY, Stack, engine_runs, ensure_engine, stop_engine


@pytest.fixture(scope="session")
def engine() -> Iterator[None]:
    """The engine, Compose, the images and the secrets; an engine started here stops after."""
    started_here = not engine_runs()
    ensure_engine()
    subprocess.run([str(DEPLOY / "scripts" / "secrets.sh")], check=True, capture_output=True)
    yield
    if started_here:
        stop_engine()


@pytest.fixture(scope="session")
def stack(engine: None) -> Iterator[Stack]:
    stack = Stack(f"wapipe-test-{os.getpid()}")
    started = time.monotonic()
    stack("build", timeout_s=900)
    built = time.monotonic()
    try:
        stack("up", "--detach", "--wait", "--wait-timeout", "240", timeout_s=300)
        print(
            f"image built in {built - started:.0f} s, stack up in {time.monotonic() - built:.0f} s"
        )
        yield stack
    except BaseException:
        print(stack.logs())
        raise
    finally:
        # The profile too: `down` leaves the services of profiles it was not given.
        stack(
            "--profile",
            "observability",
            "down",
            "--volumes",
            "--remove-orphans",
            "--timeout",
            "5",
            timeout_s=180,
            check=False,
        )
