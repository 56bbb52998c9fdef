"""Storage roots behind stages: one interface, a local-directory backend and an S3 backend.

Keys are normalized relative paths (``normalize_key``); a storage never touches anything
outside its root. The local backend also refuses symlinks, so a link planted inside a
stage cannot point it at the rest of the disk.
"""

from __future__ import annotations

import abc
import hashlib
import os
import shutil
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pydantic import BaseModel, Field, SecretStr, SerializationInfo, field_serializer

from runbatch.errors import InvalidArgumentError, NotFoundError, StagePathError
from runbatch.stage.paths import normalize_key

__all__ = ["FileEntry", "LocalStorage", "Storage", "StorageConfig", "open_storage"]

_CHUNK = 1 << 20


class StorageConfig(BaseModel):
    """How to reach a storage root. Sent to runtimes in a shard's work order, never stored in job records.

    The secret key serializes as ``**********`` unless the serialization context asks for
    ``{"secrets": "reveal"}`` (only the work order a runtime fetches with its shard token does).
    """

    url: str = Field(description="file:///absolute/dir, or s3://bucket/prefix")
    endpoint_url: str | None = Field(
        default=None, description="S3-compatible endpoint, e.g. http://minio:9000"
    )
    region: str | None = Field(default=None, description="S3 region")
    access_key: str | None = Field(default=None, description="S3 access key id")
    secret_key: SecretStr | None = Field(default=None, description="S3 secret access key")
    session_token: SecretStr | None = Field(
        default=None, description="S3 session token (temporary credentials)"
    )

    @field_serializer("secret_key", "session_token", when_used="always")
    def _serialize_secret(self, value: SecretStr | None, info: SerializationInfo) -> str | None:
        if value is None:
            return None
        context = info.context or {}
        return value.get_secret_value() if context.get("secrets") == "reveal" else "**********"


@dataclass(frozen=True)
class FileEntry:
    key: str
    size: int
    last_modified: datetime
    etag: str | None = None


class Storage(abc.ABC):
    """A storage root: files addressed by normalized keys."""

    # How to read Parquet from here (pyarrow.parquet.ParquetFile options). On a local disk,
    # buffered column reads: about half the memory of pre-buffering whole row groups, at the
    # same speed. Object stores override it: there every read is a request.
    parquet_read_options: ClassVar[dict[str, Any]] = {"pre_buffer": False, "buffer_size": 1 << 20}

    @property
    @abc.abstractmethod
    def config(self) -> StorageConfig: ...

    @abc.abstractmethod
    def open_input_file(self, key: str) -> pa.NativeFile:
        """A random-access file (what Parquet readers need)."""

    @abc.abstractmethod
    def open_output_stream(self, key: str) -> pa.NativeFile:
        """A writable stream; the file appears whole when the stream is closed."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[FileEntry]:
        """Files whose key starts with ``prefix`` (``a/b`` matches ``a/b.csv`` and ``a/b/c``), sorted."""

    @abc.abstractmethod
    def md5(self, entry: FileEntry) -> str: ...

    @abc.abstractmethod
    def move(self, src: str, dst: str) -> None: ...

    @abc.abstractmethod
    def delete_file(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete_tree(self, directory: str) -> None:
        """Remove a folder and everything in it (no-op when absent)."""

    @abc.abstractmethod
    def parquet_dataset(self, keys: Iterable[str]) -> ds.Dataset:
        """The Parquet files at ``keys`` as one dataset read through this root's own filesystem, so
        whoever scans it (DuckDB on the control plane) never needs the root's credentials."""

    @abc.abstractmethod
    def arrow_files(self, keys: Iterable[str]) -> tuple[pafs.FileSystem, Sequence[str]]:
        """This root's own filesystem and the paths of ``keys`` in it, for datasets of other formats
        (CSV, JSON) that, like ``parquet_dataset``, must never need the root's credentials."""

    @abc.abstractmethod
    def local_path(self, key: str, cache_dir: Path) -> Path:
        """A local folder holding ``key`` and everything under it: the folder itself for a local
        root, a per-host cached copy (fetched once, then reused) for a remote one."""

    def read_bytes(self, key: str) -> bytes:
        with self.open_input_file(key) as f:
            data: bytes = f.read()
            return data

    def write_bytes(self, key: str, data: bytes) -> None:
        self.write_stream(key, iter([data]))

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        """Write ``chunks`` as one file that readers see only once complete; returns its size."""
        size = 0
        with self.open_output_stream(key) as sink:
            for chunk in chunks:
                sink.write(chunk)
                size += len(chunk)
        return size

    def delete_prefix(self, prefix: str) -> int:
        """Delete every file under ``prefix`` (a prefix as in ``list``); returns how many."""
        entries = self.list(prefix)
        for entry in entries:
            self.delete_file(entry.key)
        return len(entries)


class LocalStorage(Storage):
    """A local directory used as a storage root."""

    def __init__(self, root: str) -> None:
        self.root = os.path.realpath(root)
        self._fs = pafs.LocalFileSystem()
        self._md5_cache: dict[tuple[str, int, float], str] = {}
        self._md5_lock = threading.Lock()

    @property
    def config(self) -> StorageConfig:
        return StorageConfig(url="file://" + self.root)

    def _path(self, key: str) -> str:
        rel = normalize_key(key)
        full = os.path.join(self.root, rel) if rel else self.root
        # Walk the existing components: any symlink inside the root could redirect I/O outside it.
        probe = self.root
        for part in rel.split("/") if rel else []:
            probe = os.path.join(probe, part)
            if os.path.islink(probe):
                raise StagePathError(
                    f"The stage path {key!r} goes through a symbolic link, which is refused."
                )
            if not os.path.lexists(probe):
                break
        return full

    def full_path(self, key: str) -> str:
        return self._path(key)

    def local_path(self, key: str, cache_dir: Path) -> Path:
        return Path(self._path(key))

    def parquet_dataset(self, keys: Iterable[str]) -> ds.Dataset:
        return ds.dataset([self._path(k) for k in keys], format="parquet", filesystem=self._fs)

    def arrow_files(self, keys: Iterable[str]) -> tuple[pafs.FileSystem, Sequence[str]]:
        return self._fs, [self._path(k) for k in keys]

    def open_input_file(self, key: str) -> pa.NativeFile:
        path = self._path(key)
        if not os.path.isfile(path):
            raise NotFoundError(f"File {key!r} does not exist on the stage.")
        return self._fs.open_input_file(path)

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def list(self, prefix: str = "") -> list[FileEntry]:
        norm = normalize_key(prefix)
        if prefix.endswith("/") and norm:
            norm += "/"
        base_dir = norm.rsplit("/", 1)[0] if "/" in norm else ""
        entries = [e for e in self._walk(base_dir) if e.key.startswith(norm)]
        entries.sort(key=lambda e: e.key)
        return entries

    def _walk(self, base_dir: str) -> Iterator[FileEntry]:
        start = self._path(base_dir)
        if not os.path.isdir(start):
            return
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if not os.path.islink(os.path.join(dirpath, d)))
            for name in filenames:
                full = os.path.join(dirpath, name)
                if os.path.islink(full):
                    continue
                st = os.stat(full)
                key = os.path.relpath(full, self.root).replace(os.sep, "/")
                yield FileEntry(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def md5(self, entry: FileEntry) -> str:
        cache_key = (entry.key, entry.size, entry.last_modified.timestamp())
        with self._md5_lock:
            cached = self._md5_cache.get(cache_key)
        if cached is not None:
            return cached
        digest = hashlib.md5(usedforsecurity=False)
        with open(self._path(entry.key), "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
        value = digest.hexdigest()
        with self._md5_lock:
            if len(self._md5_cache) > 10_000:
                self._md5_cache.clear()
            self._md5_cache[cache_key] = value
        return value

    def open_output_stream(self, key: str) -> pa.NativeFile:
        if not normalize_key(key):
            raise StagePathError("A file name is required to write to a stage.")
        path = self._path(key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return self._fs.open_output_stream(path)

    def write_stream(self, key: str, chunks: Iterable[bytes]) -> int:
        # A temporary name then a rename, so readers never see half a file.
        final = self._path(key)
        tmp_key = f"{normalize_key(key)}.__tmp_{os.getpid()}_{threading.get_ident()}"
        try:
            size = super().write_stream(tmp_key, chunks)
            os.replace(self._path(tmp_key), final)
        except BaseException:
            self.delete_file(tmp_key)
            raise
        return size

    def move(self, src: str, dst: str) -> None:
        target = self._path(dst)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        os.replace(self._path(src), target)

    def delete_file(self, key: str) -> bool:
        path = self._path(key)
        if os.path.isfile(path) or os.path.islink(path):
            os.remove(path)
            return True
        return False

    def delete_prefix(self, prefix: str) -> int:
        count = super().delete_prefix(prefix)
        norm = normalize_key(prefix)
        if norm and prefix.endswith("/") and os.path.isdir(self._path(norm)):
            shutil.rmtree(self._path(norm), ignore_errors=True)
        return count

    def delete_tree(self, directory: str) -> None:
        path = self._path(directory)
        if normalize_key(directory) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)


def open_storage(config: StorageConfig | str, **_: Any) -> Storage:
    """Open the storage a config or URL names."""
    if isinstance(config, str):
        config = StorageConfig(url=config)
    parsed = urlparse(config.url)
    if parsed.scheme in ("", "file"):
        root = parsed.path if parsed.scheme else config.url
        if parsed.netloc not in ("", "localhost") or not os.path.isabs(root):
            raise InvalidArgumentError(
                f"The storage URL {config.url!r} must be an absolute path (file:///dir)."
            )
        os.makedirs(root, exist_ok=True)
        return LocalStorage(root)
    if parsed.scheme in ("s3", "s3compat"):
        from runbatch.stage.s3 import S3Storage

        return S3Storage.from_config(config)
    raise InvalidArgumentError(
        f"The storage URL {config.url!r} has the scheme {parsed.scheme!r}; use file:///dir or s3://bucket/prefix."
    )
