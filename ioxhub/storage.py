"""Object storage: the hub bucket, its zones and the one layout of object keys.

`ObjectStore(settings)`: put/get of bytes, JSON, Parquet and files, listing, deletion, `open` (a
`RangedObject`: a seekable file over ranged GETs, so pyarrow fetches only the footer and the row groups it
needs); `StorageError` for an outage. The key builders (`raw_key`, `staging_key`,
`quarantine_*_key`, ...) are the only place object names are made (the Iceberg tables' data files:
`ioxhub.table_files`, `ioxhub.ingest.harmonized`): each is deterministic (a rerun writes the same key)
and each object is one PUT. Zones: README, "Storage zones".
"""
from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
from minio import Minio

from ioxhub.errors import IoxhubError
from ioxhub.s3 import S3_ERRORS, explain, make_client
from ioxhub.settings import Settings, get_settings

ZONES = ("raw", "staging", "harmonized", "quarantine", "curated", "catalog")


class StorageError(IoxhubError):
    """The object store refused or failed a request (message names bucket/key and the S3 code)."""


def raw_key(org: str, topic: str, partition: int, first: int, last: int) -> str:
    return f"raw/org={org}/topic={topic}/partition={partition}/offsets={first:020d}-{last:020d}.avro"


def raw_prefix_from(org: str, topic: str, partition: int, first: int) -> str:
    """Prefix matching every raw object of a partition that starts at `first` (earlier, longer attempts)."""
    return f"raw/org={org}/topic={topic}/partition={partition}/offsets={first:020d}-"


def quarantine_events_key(topic: str, partition: int, first: int, last: int, attempt: str | None = None) -> str:
    """The dead letters of a partition batch; `attempt`: those of a quarantine retry (beside the originals)."""
    suffix = f".retry-{attempt}" if attempt else ""
    return f"quarantine/events/topic={topic}/partition={partition}/offsets={first:020d}-{last:020d}{suffix}.avro"


def quarantine_retry_key(topic: str, partition: int, offset: int) -> str:
    """The retries of a quarantined event (`ioxhub quarantine retry`): when, and what came of each."""
    return f"quarantine/retries/topic={topic}/partition={partition}/offset={offset:020d}.json"


def quarantine_error_key(topic: str, partition: int, offset: int) -> str:
    """The traceback of an unexpected error met while handling one record (beside its dead letter)."""
    return f"quarantine/errors/topic={topic}/partition={partition}/offset={offset:020d}.txt"


def quarantine_rows_key(org: str, dataset_id: str, release_id: str) -> str:
    return f"quarantine/observations/org={org}/dataset={dataset_id}/release={release_id}.parquet"


def expired_release_key(org: str, dataset_id: str, release_id: str) -> str:
    """A release quarantined as incomplete after waiting too long in staging/ (ioxhub.ingest.staging)."""
    return f"quarantine/expired_releases/org={org}/dataset={dataset_id}/release={release_id}.json"


def staging_prefix(org: str, dataset_id: str, release_id: str) -> str:
    return f"staging/org={org}/dataset={dataset_id}/release={release_id}/"


def staging_key(org: str, dataset_id: str, release_id: str, name: str) -> str:
    return staging_prefix(org, dataset_id, release_id) + name


@dataclass
class RangedObject(io.RawIOBase):
    """A read-only, seekable file over one object, fetched with ranged GETs (for pyarrow's Parquet reader).

    `bytes_read` counts what crossed the network, which benchmarks and tests use to show pushdown.
    """

    client: Minio
    bucket: str
    key: str
    size: int
    position: int = 0
    bytes_read: int = 0
    requests: int = 0
    _buffer_start: int = field(default=-1, repr=False)
    _buffer: bytes = field(default=b"", repr=False)

    # A small read-ahead so the many tiny reads of Parquet metadata cost one request.
    READ_AHEAD = 64 * 1024

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def _fetch(self, start: int, length: int) -> bytes:
        try:
            response = self.client.get_object(self.bucket, self.key, offset=start, length=length)
            try:
                data = response.read()
            finally:
                response.close()
                response.release_conn()
        except S3_ERRORS as exc:
            raise StorageError(explain(exc, "get", f"s3://{self.bucket}/{self.key}", self.client)) from None
        self.bytes_read += len(data)
        self.requests += 1
        return data

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.position
        n = min(n, self.size - self.position)
        if n <= 0:
            return b""
        start, end = self.position, self.position + n
        buffered = self._buffer_start >= 0 and start >= self._buffer_start and end <= self._buffer_start + len(self._buffer)
        if not buffered:
            length = max(n, self.READ_AHEAD) if n < self.READ_AHEAD else n
            length = min(length, self.size - start)
            self._buffer, self._buffer_start = self._fetch(start, length), start
        offset = start - self._buffer_start
        self.position = end
        return self._buffer[offset:offset + n]

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


@dataclass(frozen=True)
class ObjectEntry:
    key: str
    size: int
    modified: datetime | None      # timezone-aware (UTC); None for a prefix


class ObjectStore:
    """The hub bucket: bytes, JSON and Parquet objects under deterministic keys."""

    def __init__(self, settings: Settings | None = None, client: Minio | None = None, bucket: str | None = None):
        self.settings = settings or get_settings()
        self.client = client or make_client(self.settings)
        self.bucket = bucket or self.settings.bucket

    def identity_settings(self) -> Settings:
        """The settings with this store's own S3 keys (a store may be given a client of another identity,
        e.g. an analyst's or the web server's): what the Iceberg catalog reads the tables with."""
        provider = getattr(self.client, "_provider", None)       # minio keeps the client's credentials there
        if provider is None:
            return self.settings
        credentials = provider.retrieve()
        if (credentials.access_key, credentials.secret_key) == (self.settings.s3_access_key, self.settings.s3_secret_key):
            return self.settings
        return dataclasses.replace(self.settings, s3_access_key=credentials.access_key, s3_secret_key=credentials.secret_key)

    def _fail(self, action: str, key: str, exc: Exception) -> StorageError:
        """A StorageError in one sentence (refused keys, a denied zone, an unreachable server), no secret."""
        return StorageError(explain(exc, action, f"s3://{self.bucket}/{key}", self.client, self.settings.s3_endpoint))

    # --- bytes ------------------------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes, content_type: str = "application/octet-stream",
                  metadata: dict[str, str] | None = None) -> None:
        try:
            self.client.put_object(self.bucket, key, io.BytesIO(data), len(data), content_type=content_type,
                                   metadata=metadata)
        except S3_ERRORS as exc:
            raise self._fail("put", key, exc) from None

    def put_if(self, key: str, data: bytes, etag: str | None) -> str | None:
        """Conditional PUT: create `key` only when absent (`etag` None), else replace it only while its ETag
        is still `etag`; returns the new ETag, or None when the condition failed (another writer was first).
        minio's public put_object turns unknown headers into user metadata, hence its lower-level call."""
        headers = {"If-None-Match": "*"} if etag is None else {"If-Match": f'"{etag}"'}
        try:
            result = self.client._put_object(self.bucket, key, data, headers={**headers, "Content-Type": "application/json"})
        except S3_ERRORS as exc:
            if getattr(exc, "code", None) in ("PreconditionFailed", "ConditionalRequestConflict"):
                return None
            raise self._fail("put", key, exc) from None
        return result.etag

    def get_with_etag(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and ETag (for a later `put_if`), or None when it does not exist."""
        try:
            response = self.client.get_object(self.bucket, key)
            try:
                return response.read(), response.headers.get("etag", "").strip('"')
            finally:
                response.close()
                response.release_conn()
        except S3_ERRORS as exc:
            if getattr(exc, "code", None) in ("NoSuchKey", "NoSuchObject"):
                return None
            raise self._fail("get", key, exc) from None

    def put_file(self, key: str, path: str | Path, content_type: str = "application/octet-stream") -> int:
        """Upload a local file as one object (streamed: multipart when large, still atomic for readers);
        returns its size. For objects too big to hold in memory (the ingest writes them to disk first)."""
        try:
            self.client.fput_object(self.bucket, key, str(path), content_type=content_type)
        except S3_ERRORS as exc:
            raise self._fail("put", key, exc) from None
        return Path(path).stat().st_size

    def get_bytes(self, key: str) -> bytes | None:
        """The object's bytes, or None when it does not exist."""
        found = self.get_with_etag(key)
        return None if found is None else found[0]

    def size(self, key: str) -> int | None:
        try:
            return self.client.stat_object(self.bucket, key).size
        except S3_ERRORS as exc:
            if getattr(exc, "code", None) in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            raise self._fail("stat", key, exc) from None

    def exists(self, key: str) -> bool:
        return self.size(key) is not None

    def list(self, prefix: str, recursive: bool = True) -> Iterator[str]:
        for entry in self.entries(prefix, recursive):
            yield entry.key

    def entries(self, prefix: str, recursive: bool = True) -> Iterator[ObjectEntry]:
        """The objects under `prefix` with their size and last-modified time."""
        try:
            for obj in self.client.list_objects(self.bucket, prefix=prefix, recursive=recursive):
                yield ObjectEntry(obj.object_name, obj.size or 0, obj.last_modified)
        except S3_ERRORS as exc:
            raise self._fail("list", prefix, exc) from None

    def delete(self, key: str) -> None:
        try:
            self.client.remove_object(self.bucket, key)
        except S3_ERRORS as exc:
            raise self._fail("delete", key, exc) from None

    # --- JSON -------------------------------------------------------------------------------------
    def put_json(self, key: str, document: Any) -> None:
        self.put_bytes(key, json.dumps(document, indent=1, sort_keys=True, default=str).encode(), "application/json")

    def get_json(self, key: str) -> Any | None:
        data = self.get_bytes(key)
        return None if data is None else json.loads(data)

    # --- Parquet ----------------------------------------------------------------------------------
    def put_parquet(self, key: str, table: pa.Table, row_group_size: int = 128 * 1024) -> int:
        """Write a table as one Parquet object (zstd, statistics on); returns its size in bytes."""
        sink = io.BytesIO()
        pq.write_table(table, sink, compression="zstd", row_group_size=row_group_size, write_statistics=True)
        data = sink.getvalue()
        self.put_bytes(key, data, "application/vnd.apache.parquet")
        return len(data)

    def open(self, key: str) -> RangedObject:
        size = self.size(key)
        if size is None:
            raise StorageError(f"s3://{self.bucket}/{key} does not exist")
        return RangedObject(self.client, self.bucket, key, size)

    def read_parquet(self, key: str, columns: list[str] | None = None, filters: Any = None) -> pa.Table | None:
        """A whole (or filtered) Parquet object, or None when it does not exist."""
        if not self.exists(key):
            return None
        with self.open(key) as handle:
            return pq.read_table(handle, columns=columns, filters=filters)
