"""A PostgreSQL cluster of the test's own (initdb into a temporary folder, pg_ctl on a free port),
so that a test may stop and start it: the machine's server is shared with other test runs."""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers import free_port

SERVER_USER = "postgres"  # initdb and postgres refuse to run as root


class PrivatePostgres:
    def __init__(self, bin_dir: Path, data_dir: Path, port: int, run_as: list[str]) -> None:
        self.bin_dir, self.data_dir, self.port, self._run_as = bin_dir, data_dir, port, run_as
        self.url = f"postgresql://{SERVER_USER}@127.0.0.1:{port}/postgres"

    async def _run(self, tool: str, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *self._run_as,
            str(self.bin_dir / tool),
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, error = await process.communicate()
        if process.returncode != 0:
            raise RuntimeError(f"{tool} failed: {error.decode().strip()[-300:]}")

    async def init(self) -> None:
        await self._run("initdb", "-D", str(self.data_dir), "-A", "trust", "-U", SERVER_USER)

    async def start(self) -> None:
        options = f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        await self._run("pg_ctl", "-D", str(self.data_dir), "-o", options, "-w", "start")

    async def stop(self, mode: str = "fast") -> None:
        """``fast``: every session ended at once, as in a restart."""
        await self._run("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")


def _server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    return Path(on_path).parent if on_path else None


@contextlib.asynccontextmanager
async def private_postgres() -> AsyncIterator[PrivatePostgres]:
    """A running private cluster, removed afterwards; the test is skipped, saying why, where
    none can be made."""
    bin_dir = _server_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) to start a private cluster")
    run_as: list[str] = []
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            pytest.skip(f"running as root and no {SERVER_USER!r} user to run PostgreSQL as")
        run_as = ["runuser", "-u", SERVER_USER, "--"]
    folder = Path(tempfile.mkdtemp(prefix="wapipe-pg-"))
    if run_as:
        shutil.chown(folder, SERVER_USER)
    cluster = PrivatePostgres(bin_dir, folder / "data", free_port(), run_as)
    try:
        await cluster.init()
        await cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(RuntimeError):
            await cluster.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)
