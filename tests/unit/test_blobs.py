"""The folder blob store: streamed, verified, content-addressed, nothing left half-written."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

import pytest

from wapipe.shared import blobs
from wapipe.shared.blobs import (
    WRITE_BYTES,
    BlobError,
    DigestMismatch,
    FolderStore,
    StoreUnavailable,
    TooLarge,
    open_store,
)


async def chunks_of(data: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def files_under(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()]


def leftovers(store: FolderStore) -> list[Path]:
    return list((store.root / "tmp").glob("*"))


async def test_bytes_are_stored_under_their_digest(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    data = bytes(range(256)) * 100
    digest = hashlib.sha256(data).hexdigest()
    blob = await store.put(chunks_of(data), expected_sha256=digest.upper())
    assert (blob.sha256, blob.size_bytes) == (digest, len(data))
    assert store.path_of(digest).read_bytes() == data
    assert blob.location == store.path_of(digest).as_uri()
    assert await store.find(digest) == blob
    assert leftovers(store) == []


async def test_the_same_bytes_twice_are_kept_once(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    first = await store.put(chunks_of(b"same bytes"))
    second = await store.put(chunks_of(b"same bytes"))
    assert first == second
    assert len(files_under(tmp_path)) == 1


async def test_a_digest_mismatch_stores_nothing(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    with pytest.raises(DigestMismatch) as raised:
        await store.put(chunks_of(b"these bytes"), expected_sha256="00" * 32)
    assert raised.value.got == hashlib.sha256(b"these bytes").hexdigest()
    assert await store.find(raised.value.got) is None
    assert leftovers(store) == []


async def test_more_than_the_limit_stops_and_stores_nothing(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    with pytest.raises(TooLarge):
        await store.put(chunks_of(b"x" * 5000), max_bytes=4096)
    assert leftovers(store) == []
    assert await store.find(hashlib.sha256(b"x" * 5000).hexdigest()) is None


def test_the_store_is_chosen_by_its_location(tmp_path: Path) -> None:
    assert isinstance(open_store(str(tmp_path)), FolderStore)
    folder = open_store(tmp_path.as_uri())
    assert isinstance(folder, FolderStore)
    assert folder.root == tmp_path.resolve()
    with pytest.raises(BlobError, match="not a store"):
        open_store("ftp://host/media")


async def test_a_blob_past_one_write_is_stored_whole(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    data = bytes(range(256)) * (3 * WRITE_BYTES // 256 + 7)  # three writes and a rest
    blob = await store.put(chunks_of(data, 64 * 1024))
    assert store.path_of(blob.sha256).read_bytes() == data
    assert blob.size_bytes == len(data)
    assert leftovers(store) == []


async def test_a_mismatch_found_after_some_writes_leaves_nothing(tmp_path: Path) -> None:
    store = FolderStore(tmp_path)
    data = b"y" * (2 * WRITE_BYTES)
    with pytest.raises(DigestMismatch):
        await store.put(chunks_of(data, 64 * 1024), expected_sha256="00" * 32)
    assert leftovers(store) == []
    assert files_under(tmp_path) == []


class DownloadBroke(Exception):
    """What the Cloud API client raises for a broken download (no OSError: not the store's)."""


async def test_a_download_broken_midway_leaves_nothing(tmp_path: Path) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"z" * (WRITE_BYTES + 1)  # written already when the link breaks
        raise DownloadBroke

    store = FolderStore(tmp_path)
    with pytest.raises(DownloadBroke):
        await store.put(broken())
    assert files_under(tmp_path) == []


async def test_a_disk_full_midway_is_the_store_unavailable_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """ENOSPC on a write: the media worker waits a store out (StoreUnavailable), so the error
    must not turn into a raw OSError on the way out (the close's flush fails again)."""
    store = FolderStore(tmp_path)
    (tmp_path / "tmp").mkdir()
    partial = tmp_path / "tmp" / f"{store._prefix}-0.part"  # the store's first partial name
    partial.symlink_to("/dev/full")  # every write to it fails with ENOSPC
    with pytest.raises(StoreUnavailable, match="No space left"):
        await store.put(chunks_of(b"x" * (WRITE_BYTES * 2), size=4096))
    assert leftovers(store) == []


async def test_a_put_cancelled_while_its_file_is_made_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shutdown cancels a put whose thread is still making the partial file: the clean-up
    waits for that thread, or the file it makes after the clean-up looked stays behind."""
    entered, release, made = threading.Event(), threading.Event(), threading.Event()
    create = blobs._create

    def slow_create(path: Path) -> BinaryIO:
        entered.set()
        release.wait(10)
        try:
            return create(path)
        finally:
            made.set()

    monkeypatch.setattr(blobs, "_create", slow_create)
    store = FolderStore(tmp_path)
    put = asyncio.create_task(store.put(chunks_of(b"x" * (WRITE_BYTES * 2), size=65536)))
    assert await asyncio.to_thread(entered.wait, 10)
    put.cancel()
    # Give the put the chance to finish while the thread still holds the file: the old code
    # did, and looked for the file before it was made.
    await asyncio.wait({put}, timeout=0.2)
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await put
    assert await asyncio.to_thread(made.wait, 10)  # the thread is done with the file too
    assert leftovers(store) == []
