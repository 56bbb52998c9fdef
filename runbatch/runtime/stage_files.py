"""Files named in file columns (``InputSpec.column_handling``): read inside their stage, encoded, fetched ahead.

A row's cell holds a full stage path (``@DB.SCHEMA.STAGE/path/file.jpg``); rows may name files on
any of the stages the control plane listed in the work order, internal or external. Each path is
parsed and normalized by ``parse_stage_path`` (no ``..``, no backslashes) and read through the
stage's own storage root under the stage's own prefix, so a cell can never reach a file outside
the stage it names (local roots also refuse symbolic links).

A file that cannot be read is not an error of the shard: it is a ``RowError`` of that row, which
the pipeline writes to the job's error rows (or raises, with ``JobSpec.fail_fast``).
"""

from __future__ import annotations

import base64
import logging
import mimetypes
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from runbatch.errors import NotFoundError, StagePathError
from runbatch.ml.model.batch import FileEncoding
from runbatch.stage.paths import StagePath, parse_stage_path
from runbatch.stage.storage import Storage

__all__ = [
    "FETCH_FAILED",
    "FILE_NOT_FOUND",
    "MODEL_ERROR",
    "STAGE_NOT_FOUND",
    "STAGE_PATH_INVALID",
    "FetchedBatch",
    "FileFetcher",
    "MountedStage",
    "PendingFetch",
    "Prefetcher",
    "RowError",
    "StageFiles",
    "encode_file",
]

log = logging.getLogger("runbatch.runtime")

# Error codes of rows in <output>/_errors/ (ERROR_CODE).
STAGE_PATH_INVALID = "STAGE_PATH_INVALID"
STAGE_NOT_FOUND = "STAGE_NOT_FOUND"
FILE_NOT_FOUND = "FILE_NOT_FOUND"
FETCH_FAILED = "FILE_READ_FAILED"
MODEL_ERROR = "MODEL_ERROR"

_READ_ATTEMPTS = 3
_READ_BACKOFF_S = 0.2
_MAX_MESSAGE = 4000


class RowError(Exception):
    """One input row that cannot be processed: its ``code`` and a message naming the problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message[:_MAX_MESSAGE]


@dataclass(frozen=True)
class MountedStage:
    """Where one stage's files live: a storage root and the key prefix of the stage in it."""

    storage: Storage
    root_key: str


class StageFiles:
    """The stages a shard may read files from, by resolved name (database, schema, stage)."""

    def __init__(
        self,
        stages: dict[tuple[str, str, str], MountedStage],
        *,
        default_database: str | None = None,
        default_schema: str | None = None,
    ) -> None:
        self.stages = stages
        self.default_database = default_database
        self.default_schema = default_schema

    def resolve(self, text: str) -> tuple[StagePath, MountedStage]:
        try:
            path = parse_stage_path(text, database=self.default_database, schema=self.default_schema)
        except StagePathError as exc:
            raise RowError(STAGE_PATH_INVALID, str(exc)) from None
        mount = self.stages.get((path.database, path.schema, path.stage))
        if mount is None:
            raise RowError(STAGE_NOT_FOUND, f"Stage '{path.stage_name}' does not exist or not authorized.")
        if not path.path:
            raise RowError(STAGE_PATH_INVALID, f"{text!r} names a stage, not a file on it.")
        return path, mount

    def read(self, text: str) -> tuple[bytes, StagePath]:
        """The bytes of the file ``text`` names. Transient storage errors are retried a few times."""
        path, mount = self.resolve(text)
        key = f"{mount.root_key}/{path.path}" if mount.root_key else path.path
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                return mount.storage.read_bytes(key), path
            except NotFoundError:
                raise RowError(FILE_NOT_FOUND, f"File {path} does not exist.") from None
            except StagePathError as exc:
                raise RowError(STAGE_PATH_INVALID, f"File {path} cannot be read: {exc}") from None
            except Exception as exc:  # noqa: BLE001 - storage errors of every backend end as row errors
                if attempt == _READ_ATTEMPTS:
                    raise RowError(
                        FETCH_FAILED, f"Reading {path} failed {attempt} times: {type(exc).__name__}: {exc}"
                    ) from None
                time.sleep(_READ_BACKOFF_S * attempt)
        raise AssertionError("unreachable")


_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"fLaC", "audio/flac"),
    (b"OggS", "audio/ogg"),
    (b"ID3", "audio/mpeg"),
]


def _mime_type(path: StagePath, data: bytes) -> str:
    guessed = mimetypes.guess_type(path.path)[0]
    if guessed:
        return guessed
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] in (b"WEBP", b"WAVE"):
        return "image/webp" if data[8:12] == b"WEBP" else "audio/wav"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return "application/octet-stream"


def encode_file(data: bytes, encoding: FileEncoding, path: StagePath) -> Any:
    """The file as the model gets it: bytes, base64 text, or a ``data:<mime>;base64,...`` URL.

    The MIME type of a data URL comes from the file's extension, else from its first bytes.
    """
    if encoding is FileEncoding.RAW_BYTES:
        return data
    encoded = base64.b64encode(data).decode("ascii")
    if encoding is FileEncoding.BASE64:
        return encoded
    return f"data:{_mime_type(path, data)};base64,{encoded}"


@dataclass
class FetchedBatch:
    """A record batch with the files of its file columns: ``values[column][row]`` (None for a null
    cell or a failed row) and the rows whose files could not be read."""

    batch: pa.RecordBatch
    values: dict[str, list[Any]]
    errors: dict[int, RowError]
    nbytes: int = 0


@dataclass
class PendingFetch:
    """The files of one batch being read; ``result`` waits for them."""

    batch: pa.RecordBatch
    _cells: dict[str, list[Future[Any] | Callable[[], Any] | None]]
    nbytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add_bytes(self, n: int) -> None:
        with self._lock:
            self.nbytes += n

    def result(self) -> FetchedBatch:
        values: dict[str, list[Any]] = {}
        errors: dict[int, RowError] = {}
        for column, cells in self._cells.items():
            out: list[Any] = []
            for row, cell in enumerate(cells):
                try:
                    if cell is None:
                        out.append(None)
                    elif isinstance(cell, Future):
                        out.append(cell.result())
                    else:
                        out.append(cell())
                except RowError as exc:
                    errors.setdefault(row, exc)
                    out.append(None)
            values[column] = out
        return FetchedBatch(self.batch, values, errors, self.nbytes)

    def cancel(self) -> None:
        for cells in self._cells.values():
            for cell in cells:
                if isinstance(cell, Future):
                    cell.cancel()


class FileFetcher:
    """Reads the files a batch's file columns name on a bounded pool of threads.

    With ``threads <= 1`` nothing runs in the background: ``result()`` reads the files one after
    another in the caller's thread (the benchmarks' "no overlap" baseline).
    """

    def __init__(
        self,
        files: StageFiles,
        columns: dict[str, FileEncoding],
        threads: int,
        messages: tuple[str, ...] = (),
    ) -> None:
        self.files = files
        self.columns = columns
        self.threads = threads
        # OpenAI chat messages columns: their media parts' stage paths are resolved
        # (runbatch.runtime.chat_messages), a cell at a time.
        self.messages = messages
        self._pool = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="file-fetch") if threads > 1 else None
        )
        self.on_file: Callable[[int], None] | None = None
        """Called as each file is read (or fails: 0 bytes), before its future completes."""

    def count_files(self, batch: pa.RecordBatch) -> int:
        # Every cell of a messages column is a task (a null one resolves to no messages).
        files = sum(len(batch) - int(batch.column(c).null_count) for c in self.columns)
        return files + int(batch.num_rows) * len(self.messages)

    def submit(self, batch: pa.RecordBatch) -> PendingFetch:
        pending = PendingFetch(batch, {})
        for column, encoding in self.columns.items():
            cells: list[Future[Any] | Callable[[], Any] | None] = []
            for text in batch.column(column).to_pylist():
                if text is None:
                    cells.append(None)
                    continue
                task = self._task(str(text), encoding, pending)
                cells.append(self._pool.submit(task) if self._pool is not None else task)
            pending._cells[column] = cells
        for column in self.messages:
            cells = []
            for value in batch.column(column).to_pylist():
                task = self._messages_task(value, pending)
                cells.append(self._pool.submit(task) if self._pool is not None else task)
            pending._cells[column] = cells
        return pending

    def _messages_task(self, value: Any, pending: PendingFetch) -> Callable[[], Any]:
        def resolve() -> Any:
            from runbatch.runtime.chat_messages import resolve_messages

            size = 0

            def count(n: int) -> None:
                nonlocal size
                size += n

            try:
                messages = resolve_messages(value, self.files, count)
                pending.add_bytes(size)
                return messages
            finally:
                if self.on_file is not None:
                    self.on_file(size)

        return resolve

    def _task(self, text: str, encoding: FileEncoding, pending: PendingFetch) -> Callable[[], Any]:
        def fetch() -> Any:
            size = 0
            try:
                data, path = self.files.read(text)
                value = encode_file(data, encoding, path)
                size = len(value)
                pending.add_bytes(size)
                return value
            finally:
                # Counted before the future completes, so whoever waits on it sees the bytes.
                if self.on_file is not None:
                    self.on_file(size)

        return fetch

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)


class Prefetcher:
    """Starts reading the files of upcoming batches while the model works on earlier ones.

    Memory stays bounded: a batch is admitted only when, with it, the batches admitted and not yet
    released hold at most ``max_rows`` rows and about ``max_bytes`` bytes of files (the bytes read
    so far plus the files still being read at the average size seen). One batch is always
    admitted, however large, so a batch bigger than the limits cannot stall the shard; a second
    one waits until a file has been read, so the first estimate is never a guess. Batches come out
    in the order they went in.
    """

    def __init__(self, fetcher: FileFetcher, *, max_rows: int, max_bytes: int, stop: threading.Event) -> None:
        self.fetcher = fetcher
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.stop = stop
        self.rows = 0
        self.bytes = 0
        self.unread = 0
        self.peak_rows = 0
        self.peak_bytes = 0
        self._seen_files = 0
        self._seen_bytes = 0
        self._cond = threading.Condition()
        fetcher.on_file = self._file_read

    def _file_read(self, size: int) -> None:
        with self._cond:
            self.bytes += size
            self.unread -= 1
            self._seen_files += 1
            self._seen_bytes += size
            self.peak_bytes = max(self.peak_bytes, self.bytes)
            self._cond.notify_all()

    def _room(self, rows: int, files: int) -> bool:
        if self.rows == 0:
            return True
        if self.rows + rows > self.max_rows or not self._seen_files:
            return False
        average = self._seen_bytes / self._seen_files
        return self.bytes + (self.unread + files) * average <= self.max_bytes

    def admit(self, batch: pa.RecordBatch) -> PendingFetch | None:
        """Wait for room, then start reading ``batch``'s files; None when the shard is stopping."""
        rows, files = batch.num_rows, self.fetcher.count_files(batch)
        with self._cond:
            while not self._room(rows, files):
                if self.stop.is_set():
                    return None
                self._cond.wait(timeout=0.1)
            self.rows += rows
            self.unread += files
            self.peak_rows = max(self.peak_rows, self.rows)
        return self.fetcher.submit(batch)

    def release(self, pending: PendingFetch) -> None:
        """The model is done with ``pending``: its rows and bytes no longer count."""
        with self._cond:
            self.rows -= pending.batch.num_rows
            self.bytes -= pending.nbytes
            self._cond.notify_all()
