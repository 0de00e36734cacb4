"""The S3-compatible blob store (AWS S3, MinIO, Ceph, R2...), for deployments.

    WAPIPE_MEDIA_DIR=s3://bucket/prefix?endpoint_url=http://minio:9000&region=us-east-1

Credentials come the usual AWS way (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, a profile, an
instance role). The client is aiobotocore: botocore itself (signing, retries, every S3-compatible
quirk botocore knows) made async, and kept by the same people as the async AWS SDK wrappers
built on it.

Like the folder store, ``put`` streams: bytes go up in parts of ``PART_BYTES`` (a multipart
upload; one plain PUT for what fits in a single part), hashed on the way, under a temporary key;
only a digest that matches is copied to its content address (``prefix/ab/cd/<sha256>``), and the
temporary object is deleted (or the upload aborted) whatever happens. Memory per upload is one
part.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, urlparse

from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from wapipe.shared.blobs import BlobError, DigestMismatch, StoredBlob, StoreUnavailable, TooLarge

log = logging.getLogger(__name__)

PART_BYTES: Final = 8 * 1024 * 1024  # S3's least part is 5 MiB (but the last)


class S3Store:
    def __init__(self, location: str) -> None:
        parsed = urlparse(location)
        if not parsed.netloc:
            raise BlobError(f"WAPIPE_MEDIA_DIR: no bucket in {location!r}")
        options = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self._client_options: dict[str, Any] = {
            "endpoint_url": options.get("endpoint_url"),
            "region_name": options.get("region", "us-east-1"),
        }
        self._stack = AsyncExitStack()
        self._client: Any = None

    async def __aenter__(self) -> Self:
        session = get_session()
        self._client = await self._stack.enter_async_context(
            session.create_client("s3", **self._client_options)
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    def key_of(self, sha256: str) -> str:
        return "/".join(filter(None, (self.prefix, sha256[:2], sha256[2:4], sha256)))

    def _location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    async def find(self, sha256: str) -> StoredBlob | None:
        key = self.key_of(sha256)
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return StoredBlob(sha256, int(head["ContentLength"]), self._location(key))

    async def put(
        self,
        chunks: AsyncIterable[bytes],
        *,
        expected_sha256: str | None = None,
        max_bytes: int | None = None,
    ) -> StoredBlob:
        temporary = "/".join(filter(None, (self.prefix, "tmp", uuid.uuid4().hex)))
        upload = _Upload(self._client, self.bucket, temporary)
        try:
            sha256, size = await self._upload(upload, chunks, max_bytes)
            if expected_sha256 is not None and sha256 != expected_sha256.lower():
                raise DigestMismatch(expected_sha256.lower(), sha256)
            key = self.key_of(sha256)
            await self._client.copy_object(
                Bucket=self.bucket, Key=key, CopySource={"Bucket": self.bucket, "Key": temporary}
            )
        except (BotoCoreError, ClientError) as exc:
            raise StoreUnavailable(f"the S3 store failed: {exc}") from exc
        finally:
            await upload.discard()
        return StoredBlob(sha256, size, self._location(key))

    async def _upload(
        self, upload: _Upload, chunks: AsyncIterable[bytes], max_bytes: int | None
    ) -> tuple[str, int]:
        digest = hashlib.sha256()
        size = 0
        part = bytearray()
        async for chunk in chunks:
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                raise TooLarge(max_bytes)
            digest.update(chunk)
            part += chunk
            if len(part) >= PART_BYTES:
                await upload.part(bytes(part))
                part.clear()
        await upload.finish(bytes(part))
        return digest.hexdigest(), size


class _Upload:
    """One object written in parts: a multipart upload once a part is full, else one PUT."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self._client = client
        self._bucket = bucket
        self._key = key
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._written = False

    async def part(self, data: bytes) -> None:
        if self._upload_id is None:
            started = await self._client.create_multipart_upload(Bucket=self._bucket, Key=self._key)
            self._upload_id = started["UploadId"]
        number = len(self._parts) + 1
        answer = await self._client.upload_part(
            Bucket=self._bucket,
            Key=self._key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def finish(self, rest: bytes) -> None:
        if self._upload_id is None:
            await self._client.put_object(Bucket=self._bucket, Key=self._key, Body=rest)
        else:
            if rest:
                await self.part(rest)
            await self._client.complete_multipart_upload(
                Bucket=self._bucket,
                Key=self._key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": self._parts},
            )
            self._upload_id = None
        self._written = True

    async def discard(self) -> None:
        """The temporary object goes, whatever happened (an unfinished upload is aborted); a
        failure here is logged, never raised over the error that brought us here."""
        try:
            if self._upload_id is not None:
                await self._client.abort_multipart_upload(
                    Bucket=self._bucket, Key=self._key, UploadId=self._upload_id
                )
            if self._written:
                await self._client.delete_object(Bucket=self._bucket, Key=self._key)
        except (BotoCoreError, ClientError) as exc:
            log.warning(
                "a temporary S3 object is left behind", extra={"key": self._key, "error": str(exc)}
            )
