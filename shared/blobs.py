"""Where media bytes go: a content-addressed blob store, behind one small interface.

    async with open_store(settings.media_dir) as store:   # a folder, or s3://bucket/prefix
        blob = await store.put(chunks, expected_sha256=digest, max_bytes=limit)
        blob.location                                      # file:///.../ab/cd/abcd..., s3://...

``put`` streams: each chunk is hashed and written as it comes, never the whole in memory. The
bytes land under a temporary name and move to their content address (``<sha256>``, fanned out by
its first two pairs of hex digits) only once the digest matches, so a store never holds a blob
under a wrong name, and the same bytes stored twice are kept once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Protocol, Self

DEFAULT_MEDIA_DIR: Final = Path("var") / "media"


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
    """Blobs as files under ``root``: ``root/ab/cd/abcd...``; partial writes under ``root/tmp``."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

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
        partial = self.root / "tmp" / f"{uuid.uuid4().hex}.part"
        try:
            return await self._write(partial, chunks, expected_sha256, max_bytes)
        except OSError as exc:
            raise StoreUnavailable(f"the media folder failed: {exc}") from exc
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)  # gone once renamed

    async def _write(
        self,
        partial: Path,
        chunks: AsyncIterable[bytes],
        expected_sha256: str | None,
        max_bytes: int | None,
    ) -> StoredBlob:
        await asyncio.to_thread(partial.parent.mkdir, parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        file = await asyncio.to_thread(partial.open, "wb")
        try:
            async for chunk in chunks:
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(max_bytes)
                digest.update(chunk)
                await asyncio.to_thread(file.write, chunk)
            await asyncio.to_thread(_flush_to_disk, file)
        finally:
            await asyncio.to_thread(file.close)
        sha256 = digest.hexdigest()
        if expected_sha256 is not None and sha256 != expected_sha256.lower():
            raise DigestMismatch(expected_sha256.lower(), sha256)
        final = self.path_of(sha256)
        await asyncio.to_thread(final.parent.mkdir, parents=True, exist_ok=True)
        await asyncio.to_thread(os.replace, partial, final)  # atomic; same bytes, same name
        await asyncio.to_thread(_sync_folder, final.parent)
        return StoredBlob(sha256, size, final.as_uri())


def _sync_folder(folder: Path) -> None:
    """The rename on disk too (a file's own fsync does not cover its name)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _flush_to_disk(file: BinaryIO) -> None:
    file.flush()
    os.fsync(file.fileno())  # stored means on disk: the worker acks after


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
