"""Where media bytes go: a content-addressed blob store, behind one small interface.

    async with open_store(settings.media_dir) as store:   # a folder, or s3://bucket/prefix
        blob = await store.put(chunks, expected_sha256=digest, max_bytes=limit)
        blob.location                                      # file:///.../ab/cd/abcd..., s3://...

``put`` streams: each chunk is hashed as it comes and written with the ones before it once they
make ``WRITE_BYTES``: never more than that and a chunk in memory. The bytes land under a
temporary name and move to their content address (``<sha256>``, fanned out by its first two
pairs of hex digits) only once the digest matches, so a store never holds a blob under a wrong
name, and the same bytes stored twice are kept once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import os
import uuid
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Final, Protocol, Self

DEFAULT_MEDIA_DIR: Final = Path("var") / "media"
# What a folder store holds in memory before it writes: an image (100 KB-5 MB) in one or a few
# writes. Each write is a trip to a thread, and those trips (a thread woken, the loop woken
# back), not the bytes, were most of the media worker's own CPU (tests/bench/results/
# media_worker.md, 2026-12-04).
WRITE_BYTES: Final = 1024 * 1024


class BlobError(Exception):
    """The bytes could not be stored as asked."""


class StoreUnavailable(BlobError):
    """The store itself failed (a full disk, an S3 outage): no fault of the bytes; wait."""


class DigestMismatch(BlobError):
    def __init__(self, expected: str, got: str) -> None:
        super().__init__(f"sha256 mismatch: expected {expected}, got {got}")
        self.expected = expected
        self.got = got


class TooLarge(BlobError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class StoredBlob:
    sha256: str  # hex
    size_bytes: int
    location: str  # a URL: file:///... (s3://bucket/key for an S3 store)


class BlobStore(Protocol):
    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def put(
        self,
        chunks: AsyncIterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredBlob: ...

    async def find(self, sha256: str) -> StoredBlob | None: ...


class FolderStore:
    """Blobs as files under ``root``: ``root/ab/cd/abcd...``; partial writes under ``root/tmp``.

    A blob costs one trip to a thread when it fits ``WRITE_BYTES`` (the file made, written,
    synced, moved to its name, its folder synced, all in the trip), and one more per
    ``WRITE_BYTES`` past that. A blob refused (a digest that does not match, too large, a
    broken download) before its first write never touches the disk."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        # Partial files' names: unique across processes sharing the folder, and cheap per blob.
        self._prefix = uuid.uuid4().hex
        self._numbers = itertools.count()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def path_of(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    async def find(self, sha256: str) -> StoredBlob | None:
        path = self.path_of(sha256)
        try:
            size = (await asyncio.to_thread(path.stat)).st_size
        except FileNotFoundError:
            return None
        return StoredBlob(sha256, size, path.as_uri())

    async def put(
        self,
        chunks: AsyncIterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredBlob:
        partial = _Partial(self.root / "tmp" / f"{self._prefix}-{next(self._numbers)}.part")
        trip: asyncio.Future[None] | None = None  # the file's latest trip to a thread

        async def in_thread(work: Callable[..., None], *args: Any) -> None:
            nonlocal trip
            trip = asyncio.ensure_future(asyncio.to_thread(work, *args))
            await asyncio.shield(trip)  # a cancel stops the wait, not the thread

        try:
            digest = hashlib.sha256()
            size = 0
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(max_bytes)
                digest.update(chunk)
                if partial.hold(chunk) >= WRITE_BYTES:
                    await in_thread(partial.write)
            sha256 = digest.hexdigest()
            if expected_sha256 is not None and sha256 != expected_sha256.lower():
                raise DigestMismatch(expected_sha256.lower(), sha256)
            final = self.path_of(sha256)
            await in_thread(partial.store_as, final)
            return StoredBlob(sha256, size, final.as_uri())
        except OSError as exc:
            raise StoreUnavailable(f"the media folder failed: {exc}") from exc
        finally:
            if trip is not None and not trip.done():
                # Cancelled while a thread had the file (a shutdown): clean up after it, not
                # beside it, or a file it makes after the look below would be left behind.
                await asyncio.wait({trip})
            if partial.on_disk:  # refused or failed after a first write: not kept
                await asyncio.to_thread(partial.discard)


class _Partial:
    """A blob's bytes on their way to disk: held, then written under a temporary name, which
    ``store_as`` moves to the final one. Its methods but ``hold`` block: run them in a thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._file: BinaryIO | None = None
        self.on_disk = False  # a file under the temporary name exists

    def hold(self, chunk: bytes) -> int:
        """Keep ``chunk`` for the next write; the bytes held now."""
        self._held.append(chunk)
        self._held_bytes += len(chunk)
        return self._held_bytes

    def write(self) -> None:
        """Write what is held (the file made at the first write)."""
        if self._file is None:
            self._file = _create(self.path)
            self.on_disk = True
        self._file.writelines(self._held)
        self._held, self._held_bytes = [], 0

    def store_as(self, final: Path) -> None:
        """Write the rest, sync, and move to ``final`` (the rename on disk too)."""
        self.write()
        assert self._file is not None
        _flush_to_disk(self._file)  # stored means on disk: the worker acks after
        self._file.close()
        try:
            os.replace(self.path, final)  # atomic; same bytes, same name
        except FileNotFoundError:  # the first blob under this fan-out folder
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.path, final)
        self.on_disk = False
        _sync_folder(final.parent)

    def discard(self) -> None:
        """Close and remove the partial file. Quietly: this runs while another error (the
        caller's) is on its way, and a disk that failed a write fails the close's flush of the
        same bytes again; a file left under tmp is garbage, never a blob."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
        self.on_disk = False


def _create(path: Path) -> BinaryIO:
    try:
        return path.open("wb")
    except FileNotFoundError:  # the first partial file of this store
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")


def _sync_folder(folder: Path) -> None:
    """The rename on disk too (a file's own fsync does not cover its name)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _flush_to_disk(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())


def open_store(location: str) -> BlobStore:
    """The store named by ``WAPIPE_MEDIA_DIR``: empty for ``./var/media``, a path or file URL,
    or ``s3://bucket/prefix`` (shared/blobs_s3.py). Use it as ``async with``."""
    if not location:
        return FolderStore(DEFAULT_MEDIA_DIR)
    if location.startswith("file://"):
        return FolderStore(Path(location.removeprefix("file://")))
    if location.startswith("s3://"):
        from wapipe.shared.blobs_s3 import S3Store  # only deployments that use it load botocore

        return S3Store(location)
    if "://" in location:
        scheme = location.split("://", 1)[0]
        raise BlobError(f"WAPIPE_MEDIA_DIR: {scheme}:// is not a store; use a folder or s3://")
    return FolderStore(Path(location))
