"""S3-compatible storage (MinIO, AWS S3, moto): pyarrow's S3 filesystem for data, the minio SDK for the rest.

Reads are ranged (Parquet footers, row groups), writes are multipart streams that become
visible only when complete, moves are server-side copies, listing pages through prefixes.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar, cast
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from minio import Minio
from minio.commonconfig import CopySource
from minio.deleteobjects import DeleteObject
from minio.error import S3Error

from runbatch.errors import InvalidArgumentError, NotFoundError
from runbatch.stage.paths import normalize_key
from runbatch.stage.storage import FileEntry, Storage, StorageConfig

__all__ = ["ChunkReader", "S3Storage"]

_SINGLE_COPY_LIMIT = 5 << 30  # S3's limit for one CopyObject; larger objects are composed
_PART_SIZE = 64 << 20


class ChunkReader(io.RawIOBase):
    """A file-like view of an iterator of byte chunks (minio's streaming put, Arrow stream readers)."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""
        self.size = 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self._buffer) < n:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if n < 0:
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:n], self._buffer[n:]
        self.size += len(out)
        return out


class S3Storage(Storage):
    # Pre-buffering coalesces a row group's column chunks into few concurrent range requests;
    # buffered reads would send one request per megabyte.
    parquet_read_options: ClassVar[dict[str, Any]] = {"pre_buffer": True}

    def __init__(self, config: StorageConfig) -> None:
        parsed = urlparse(config.url)
        if not parsed.netloc:
            raise InvalidArgumentError(
                f"The storage URL {config.url!r} names no bucket (s3://bucket/prefix)."
            )
        self._config = config
        self.bucket = parsed.netloc
        self.prefix = normalize_key(parsed.path)
        endpoint = urlparse(config.endpoint_url) if config.endpoint_url else None
        secure = endpoint is None or endpoint.scheme == "https"
        host = endpoint.netloc if endpoint is not None else "s3.amazonaws.com"
        secret = config.secret_key.get_secret_value() if config.secret_key else None
        token = config.session_token.get_secret_value() if config.session_token else None
        self._minio = Minio(
            host,
            access_key=config.access_key,
            secret_key=secret,
            session_token=token,
            secure=secure,
            region=config.region or "us-east-1",
        )
        self._fs = pafs.S3FileSystem(
            access_key=config.access_key,
            secret_key=secret,
            session_token=token,
            region=config.region or "us-east-1",
            endpoint_override=host if endpoint is not None else None,
            scheme="https" if secure else "http",
            allow_bucket_creation=False,
            allow_bucket_deletion=False,
        )

    @classmethod
    def from_config(cls, config: StorageConfig) -> S3Storage:
        return cls(config)

    @property
    def config(self) -> StorageConfig:
        return self._config

    def _object(self, key: str) -> str:
        rel = normalize_key(key)
        return f"{self.prefix}/{rel}" if self.prefix else rel

    def _key(self, object_name: str) -> str:
        return object_name[len(self.prefix) + 1 :] if self.prefix else object_name

    def open_input_file(self, key: str) -> pa.NativeFile:
        try:
            return self._fs.open_input_file(f"{self.bucket}/{self._object(key)}")
        except FileNotFoundError:
            raise NotFoundError(f"File {key!r} does not exist on the stage.") from None

    def parquet_dataset(self, keys: Iterable[str]) -> ds.Dataset:
        paths = [f"{self.bucket}/{self._object(k)}" for k in keys]
        return ds.dataset(paths, format="parquet", filesystem=self._fs)

    def arrow_files(self, keys: Iterable[str]) -> tuple[pafs.FileSystem, Sequence[str]]:
        return self._fs, [f"{self.bucket}/{self._object(k)}" for k in keys]

    def open_output_stream(self, key: str) -> pa.NativeFile:
        if not normalize_key(key):
            raise InvalidArgumentError("A file name is required to write to a stage.")
        return self._fs.open_output_stream(f"{self.bucket}/{self._object(key)}")

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """One PUT when the data fits in a part (its ETag is then the MD5 LIST reports), multipart above."""
        if not normalize_key(key):
            raise InvalidArgumentError("A file name is required to write to a stage.")
        reader = ChunkReader(chunks)
        stream = cast(BinaryIO, reader)
        self._minio.put_object(self.bucket, self._object(key), stream, length=-1, part_size=_PART_SIZE)
        return reader.size

    def exists(self, key: str) -> bool:
        try:
            self._minio.stat_object(self.bucket, self._object(key))
            return True
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "NotFound"):
                return False
            raise

    def list(self, prefix: str = "") -> list[FileEntry]:
        norm = normalize_key(prefix)
        if prefix.endswith("/") and norm:
            norm += "/"
        object_prefix = f"{self.prefix}/{norm}" if self.prefix else norm
        entries = [
            FileEntry(
                key=self._key(obj.object_name),
                size=obj.size or 0,
                last_modified=obj.last_modified or datetime.now(UTC),
                etag=(obj.etag or "").strip('"'),
            )
            for obj in self._minio.list_objects(self.bucket, prefix=object_prefix, recursive=True)
            if obj.object_name is not None and not obj.is_dir
        ]
        entries.sort(key=lambda e: e.key)
        return entries

    def md5(self, entry: FileEntry) -> str:
        # The ETag is the MD5 of objects written in one part; multipart uploads carry "<md5>-<parts>".
        return entry.etag or ""

    def move(self, src: str, dst: str) -> None:
        source, target = self._object(src), self._object(dst)
        size = self._minio.stat_object(self.bucket, source).size or 0
        if size <= _SINGLE_COPY_LIMIT:
            self._minio.copy_object(self.bucket, target, CopySource(self.bucket, source))
        else:
            from minio.commonconfig import ComposeSource

            self._minio.compose_object(self.bucket, target, [ComposeSource(self.bucket, source)])
        self._minio.remove_object(self.bucket, source)

    def delete_file(self, key: str) -> bool:
        if not self.exists(key):
            return False
        self._minio.remove_object(self.bucket, self._object(key))
        return True

    def delete_prefix(self, prefix: str) -> int:
        entries = self.list(prefix)
        self._remove([e.key for e in entries])
        return len(entries)

    def delete_tree(self, directory: str) -> None:
        if normalize_key(directory):
            self._remove([e.key for e in self.list(normalize_key(directory) + "/")])

    def _remove(self, keys: Sequence[str]) -> None:
        errors = list(self._minio.remove_objects(self.bucket, (DeleteObject(self._object(k)) for k in keys)))
        if errors:
            raise OSError(f"Deleting {len(errors)} object(s) from s3://{self.bucket} failed: {errors[0]}")

    def local_path(self, key: str, cache_dir: Path) -> Path:
        """Download the folder ``key`` once per host; later callers (other shards) reuse the copy.

        Model versions are immutable, so a complete copy never goes stale; the lock makes
        concurrent shards on one host wait for the first download instead of repeating it.
        """
        digest = hashlib.sha256(f"{self._config.url}|{self._config.endpoint_url}|{key}".encode()).hexdigest()[
            :32
        ]
        target = cache_dir / "s3" / digest
        if (target / ".complete").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target.parent / f"{digest}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if (target / ".complete").exists():
                return target
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{digest}-"))
            try:
                base = normalize_key(key)
                for entry in self.list(base + "/"):
                    dest = staging / entry.key[len(base) + 1 :]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    self._minio.fget_object(self.bucket, self._object(entry.key), str(dest))
                (staging / ".complete").write_text("")
                if target.exists():
                    shutil.rmtree(target)
                os.rename(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target
