"""The S3 blob store over real HTTP, against moto's standalone S3-compatible server."""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator

import pytest

from wapipe.shared.blobs import DigestMismatch, TooLarge, open_store
from wapipe.shared.blobs_s3 import PART_BYTES, S3Store


@pytest.fixture
async def store(s3_location: str) -> AsyncIterator[S3Store]:
    async with open_store(s3_location) as opened:
        assert isinstance(opened, S3Store)
        yield opened


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def keys(store: S3Store) -> list[str]:
    client = store._client  # the test looks inside: what objects are left
    listed = await client.list_objects_v2(Bucket=store.bucket)
    return sorted(item["Key"] for item in listed.get("Contents", []))


async def fetch(store: S3Store, key: str) -> bytes:
    answer = await store._client.get_object(Bucket=store.bucket, Key=key)
    async with answer["Body"] as body:
        data: bytes = await body.read()
        return data


@pytest.mark.parametrize("size", [10, PART_BYTES * 2 + 12345])  # one PUT; a multipart upload
async def test_bytes_are_stored_under_their_digest(store: S3Store, size: int) -> None:
    data = os.urandom(size)
    digest = hashlib.sha256(data).hexdigest()
    blob = await store.put(chunks_of(data), expected_sha256=digest)
    key = store.key_of(digest)
    assert (blob.sha256, blob.size_bytes) == (digest, size)
    assert blob.location == f"s3://{store.bucket}/{key}"
    assert key == f"media/{digest[:2]}/{digest[2:4]}/{digest}"
    assert await fetch(store, key) == data
    assert await keys(store) == [key]  # the temporary object is gone
    assert await store.find(digest) == blob


async def test_a_digest_mismatch_leaves_nothing(store: S3Store) -> None:
    data = os.urandom(PART_BYTES + 1)
    with pytest.raises(DigestMismatch):
        await store.put(chunks_of(data), expected_sha256="00" * 32)
    assert await keys(store) == []
    assert await store.find(hashlib.sha256(data).hexdigest()) is None


async def test_too_large_aborts_the_upload(store: S3Store) -> None:
    with pytest.raises(TooLarge):
        await store.put(chunks_of(b"x" * (PART_BYTES * 2)), max_bytes=PART_BYTES + 10)
    assert await keys(store) == []
    uploads = await store._client.list_multipart_uploads(Bucket=store.bucket)
    assert uploads.get("Uploads", []) == []
