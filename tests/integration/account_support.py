"""Running ``wapipe`` account commands against a sandbox in a test: the command runs in a thread
(its own event loop, as on a terminal) while the sandbox answers in the test's loop."""

from __future__ import annotations

import asyncio
import io
import json
import os
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from typing import Any
from unittest import mock

from tests.integration.sandbox_support import TOKEN, SandboxClient
from wapipe.sandbox.keys import WORLD


@dataclass
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def waba_id(sandbox: SandboxClient) -> str:
    return next(iter(sandbox.app[WORLD].businesses.values())).waba_id


def environment(sandbox: SandboxClient, database_url: str, **more: str) -> dict[str, str]:
    return {
        "WAPIPE_GRAPH_URL": str(sandbox.make_url("")).rstrip("/"),
        "WAPIPE_ACCESS_TOKEN": TOKEN,
        "WAPIPE_WABA_ID": waba_id(sandbox),
        "WAPIPE_DATABASE_URL": database_url,
        "WAPIPE_GRAPH_RETRIES": "0",
        "WAPIPE_LOG_FORMAT": "text",
        "WAPIPE_LOG_LEVEL": "WARNING",  # the sandbox shares the process: not its access log
        **more,
    }


async def wapipe(env: dict[str, str], *argv: str) -> Ran:
    """``wapipe *argv`` with ``env`` set, as a person would run it; its exit code and output."""
    from wapipe.cli.main import main

    def run() -> Ran:
        out, err = io.StringIO(), io.StringIO()
        with mock.patch.dict(os.environ, env), redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
        return Ran(code, out.getvalue(), err.getvalue())

    return await asyncio.to_thread(run)
