"""Storage roots behind stages: one interface over pyarrow filesystems.

Keys are normalized relative paths (``normalize_key``); a storage never touches anything
outside its root. The local backend also refuses symlinks, so a link planted inside a
stage cannot point it at the rest of the disk.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.fs as pafs
from pydantic import BaseModel, Field

from runbatch.errors import InvalidArgumentError, NotFoundError, StagePathError
from runbatch.stage.paths import normalize_key

__all__ = ["FileEntry", "Storage", "StorageConfig", "open_storage"]


class StorageConfig(BaseModel):
    """How to reach a storage root. Sent to runtimes inside a shard's work order."""

    url: str = Field(description="file:///absolute/dir for a local directory")


@dataclass(frozen=True)
class FileEntry:
    key: str
    size: int
    last_modified: datetime


class Storage:
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

    # -- reading ---------------------------------------------------------------------------
    def open_input_file(self, key: str) -> pa.NativeFile:
        path = self._path(key)
        if not os.path.isfile(path):
            raise NotFoundError(f"File {key!r} does not exist on the stage.")
        return self._fs.open_input_file(path)

    def read_bytes(self, key: str) -> bytes:
        with self.open_input_file(key) as f:
            data: bytes = f.read()
            return data

    def exists(self, key: str) -> bool:
        return os.path.isfile(self._path(key))

    def list(self, prefix: str = "") -> list[FileEntry]:
        """Files whose key starts with ``prefix`` (``a/b`` matches ``a/b.csv`` and ``a/b/c``), sorted."""
        trailing = prefix.endswith("/")
        norm = normalize_key(prefix)
        if trailing and norm:
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
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        value = digest.hexdigest()
        with self._md5_lock:
            if len(self._md5_cache) > 10_000:
                self._md5_cache.clear()
            self._md5_cache[cache_key] = value
        return value

    # -- writing ---------------------------------------------------------------------------
    def open_output_stream(self, key: str) -> pa.NativeFile:
        path = self._path(key)
        if not normalize_key(key):
            raise StagePathError("A file name is required to write to a stage.")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return self._fs.open_output_stream(path)

    def write_bytes(self, key: str, data: bytes) -> None:
        with self.open_output_stream(key) as f:
            f.write(data)

    def write_stream(self, key: str, chunks: Iterator[bytes]) -> int:
        """Write chunks to a temporary name and rename, so readers never see half a file."""
        final = self._path(key)
        tmp_key = f"{normalize_key(key)}.__tmp_{os.getpid()}_{threading.get_ident()}"
        size = 0
        try:
            with self.open_output_stream(tmp_key) as f:
                for chunk in chunks:
                    f.write(chunk)
                    size += len(chunk)
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
        """Delete every file under ``prefix`` (a prefix as in ``list``); returns how many."""
        entries = self.list(prefix)
        for entry in entries:
            self.delete_file(entry.key)
        norm = normalize_key(prefix)
        path = self._path(norm)
        if norm and prefix.endswith("/") and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
        return len(entries)

    def delete_tree(self, directory: str) -> None:
        """Remove a folder and everything in it (no-op when absent)."""
        path = self._path(directory)
        if normalize_key(directory) and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)

    def filesystem(self) -> tuple[pafs.FileSystem, str]:
        """The pyarrow filesystem and the base path keys are relative to (for dataset reads)."""
        return self._fs, self.root

    def full_path(self, key: str) -> str:
        return self._path(key)


def open_storage(config: StorageConfig | str, **_: Any) -> Storage:
    """Open the storage a config or URL names."""
    url = config.url if isinstance(config, StorageConfig) else config
    parsed = urlparse(url)
    if parsed.scheme in ("", "file"):
        root = parsed.path if parsed.scheme else url
        if parsed.netloc not in ("", "localhost") or not os.path.isabs(root):
            raise InvalidArgumentError(f"The storage URL {url!r} must be an absolute path (file:///dir).")
        os.makedirs(root, exist_ok=True)
        return Storage(root)
    raise InvalidArgumentError(
        f"The storage URL {url!r} has the scheme {parsed.scheme!r}; this build supports file:// storage."
    )
