"""The streaming pipeline of one shard: read -> infer -> write, each stage in its own thread.

Memory stays bounded whatever the input size: bounded queues hold at most a few record
batches between stages. Reading and writing (pyarrow, GIL released) overlap the model call.
Files named in file columns are read by a pool of threads ahead of the model, within a budget
of rows and bytes (``runbatch.runtime.stage_files``).
Output files are written under the attempt's own prefix; the control plane commits them.

Rows that cannot be processed (a file that cannot be read, a row the model raises on) do not
fail the shard: a failed batch is split in halves until the failing rows are isolated, and
those rows go to error files (the input columns plus ERROR_CODE and ERROR_MESSAGE), which
the control plane commits under ``<output>/_errors/``. ``fail_fast`` and ``max_failed_rows``
turn them back into shard failures.
"""

from __future__ import annotations

import logging
import math
import queue
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runbatch.errors import InputRowError
from runbatch.inference.function import ModelFunction
from runbatch.ml.model._signatures.core import FeatureGroupSpec
from runbatch.ml.model.batch import FileEncoding
from runbatch.runtime.stage_files import (
    MODEL_ERROR,
    FetchedBatch,
    FileFetcher,
    PendingFetch,
    Prefetcher,
    RowError,
    StageFiles,
)
from runbatch.stage.storage import Storage
from runbatch.wire.jobs import InputSlice, OutputFile

__all__ = [
    "ERROR_COLUMNS",
    "FILE_BATCH_ROWS",
    "PipelineConfig",
    "ShardPipeline",
    "Stopped",
    "TooManyFailedRows",
    "auto_batch_rows",
    "read_slices",
    "run_pipeline",
]

log = logging.getLogger("runbatch.runtime")

_DONE = object()
_TARGET_BATCH_BYTES = 8 << 20
# Rows per batch when a column names files (unless JobSpec.max_batch_rows says otherwise): the
# batch's files are in memory at once, and a path column's size says nothing about theirs.
FILE_BATCH_ROWS = 64
ERROR_COLUMNS = ("ERROR_CODE", "ERROR_MESSAGE")
_LOGGED_ERROR_ROWS = 20


class Stopped(Exception):
    """The shard was asked to stop (cancelled, or superseded by another attempt)."""


class TooManyFailedRows(Exception):
    """More rows failed than ``JobSpec.max_failed_rows`` allows."""


@dataclass
class PipelineConfig:
    input_storage: Storage
    output_storage: Storage
    slices: list[InputSlice]
    output_prefix: str
    shard_index: int
    batch_rows: int
    feature_columns: dict[str, str]
    params: dict[str, Any]
    column_handling: dict[str, Any] | None = None
    default_database: str | None = None
    default_schema: str | None = None
    num_workers: int = 1
    rows_per_file: int = 1_000_000
    bytes_per_file: int = 256 << 20
    queue_depth: int = 3
    partition_column: str | None = None
    # Shards of a partitioned job each read the whole input and keep the partitions whose
    # hash falls to them, so one partition is never split between shards.
    partition_shards: int = 1
    spill_dir: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    # File columns: where their stages are, and how many files to read at once and ahead.
    files: StageFiles | None = None
    fetch_threads: int = 16
    prefetch: bool = True
    prefetch_rows: int = 1024
    prefetch_bytes: int = 256 << 20
    # Error rows (JobSpec.fail_fast, JobSpec.max_failed_rows).
    fail_fast: bool = False
    max_failed_rows: int | None = None


def auto_batch_rows(storage: Storage, slices: list[InputSlice], cap: int | None) -> int:
    """About 8 MB of uncompressed input per batch, between 256 and 65,536 rows."""
    rows = 4096
    if slices:
        with storage.open_input_file(slices[0].key) as f:
            meta = pq.ParquetFile(f).metadata
            size = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
            if meta.num_rows:
                rows = max(256, min(65_536, _TARGET_BATCH_BYTES * meta.num_rows // max(size, 1)))
    return min(rows, cap) if cap else rows


def read_slices(storage: Storage, slices: list[InputSlice], batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Record batches of exactly the rows the slices name, read row group by row group."""
    for s in slices:
        start, end = s.offset, s.offset + s.rows
        with storage.open_input_file(s.key) as f:
            pf = pq.ParquetFile(f, **storage.parquet_read_options)
            groups, first_row, pos = [], None, 0
            for i in range(pf.num_row_groups):
                n = pf.metadata.row_group(i).num_rows
                if pos + n > start and pos < end:
                    groups.append(i)
                    first_row = pos if first_row is None else first_row
                pos += n
            cursor = first_row or 0
            for batch in pf.iter_batches(batch_size=batch_rows, row_groups=groups):
                b_start = cursor
                cursor += batch.num_rows
                lo, hi = max(start, b_start) - b_start, min(end, cursor) - b_start
                if hi > lo:
                    yield batch.slice(lo, hi - lo)
                if cursor >= end:
                    break


class _Writer:
    """Parquet files of about ``rows_per_file`` rows under the attempt's prefix."""

    def __init__(
        self,
        storage: Storage,
        cfg: PipelineConfig,
        stem: str = "part",
        kind: Literal["data", "errors"] = "data",
    ) -> None:
        self.storage = storage
        self.cfg = cfg
        self.stem = stem
        self.kind = kind
        self.files: list[OutputFile] = []
        self._writer: pq.ParquetWriter | None = None
        self._sink: Any = None
        self._key = ""
        self._rows = 0
        self._bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._key = f"{self.cfg.output_prefix}/{self.stem}-{self.cfg.shard_index:05d}-{len(self.files):05d}.parquet"
            self._sink = self.storage.open_output_stream(self._key)
            # Dictionary encoding rarely shrinks floating-point columns and makes writing them
            # about five times slower (see docs/benchmarks.md); keep it for everything else.
            dictionary = [f.name for f in batch.schema if not pa.types.is_floating(f.type)]
            self._writer = pq.ParquetWriter(
                self._sink, batch.schema, compression="snappy", use_dictionary=dictionary or False
            )
        self._writer.write_batch(batch)
        self._rows += batch.num_rows
        self._bytes += batch.nbytes
        if self._rows >= self.cfg.rows_per_file or self._bytes >= self.cfg.bytes_per_file:
            self._roll()

    def _roll(self) -> None:
        if self._writer is None:
            return
        self._writer.close()
        size = self._sink.tell()
        self._sink.close()
        self.files.append(OutputFile(key=self._key, rows=self._rows, bytes=size, kind=self.kind))
        self._writer, self._sink, self._rows, self._bytes = None, None, 0, 0

    def close(self) -> list[OutputFile]:
        self._roll()
        return self.files


@dataclass
class _Result:
    """What one input batch became: output rows, failed rows, and how many input rows it had."""

    output: pa.RecordBatch | None
    errors: pa.RecordBatch | None
    rows: int


def _error_batch(batch: pa.RecordBatch, failed: dict[int, RowError]) -> pa.RecordBatch:
    """The failed rows of ``batch``: every input column, then ERROR_CODE and ERROR_MESSAGE."""
    rows = sorted(failed)
    taken = batch.take(pa.array(rows, pa.int64()))
    names = [n for n in taken.schema.names if n.upper() not in ERROR_COLUMNS]
    arrays = [taken.column(n) for n in names]
    arrays.append(pa.array([failed[r].code for r in rows], pa.string()))
    arrays.append(pa.array([failed[r].message for r in rows], pa.string()))
    return pa.RecordBatch.from_arrays(arrays, names=[*names, *ERROR_COLUMNS])


def _model_error(exc: BaseException) -> RowError:
    if isinstance(exc, InputRowError):
        return RowError(exc.row_code, exc.message)
    return RowError(MODEL_ERROR, f"{type(exc).__name__}: {exc}")


class _Inference:
    """Turns one input batch into output rows (input columns plus the model's outputs) and error rows."""

    def __init__(self, fn: ModelFunction, cfg: PipelineConfig) -> None:
        self.fn = fn
        self.cfg = cfg
        self.features = [f.name for f in fn.signature.inputs]
        self.columns = [cfg.feature_columns[f] for f in self.features]
        outputs = {f.name.upper() for f in fn.signature.outputs}
        encodings = {
            column: FileEncoding(opts["convert_to"])
            for column, opts in (cfg.column_handling or {}).items()
            if column in self.columns
        }
        files = cfg.files or StageFiles(
            {}, default_database=cfg.default_database, default_schema=cfg.default_schema
        )
        # A chat function's messages column: stage paths in its media parts are read like files.
        messages = tuple(
            cfg.feature_columns[f.name]
            for f in fn.signature.inputs
            if isinstance(f, FeatureGroupSpec) and f.name.lower() == "messages"
        )
        self.fetcher = (
            FileFetcher(files, encodings, cfg.fetch_threads, messages) if encodings or messages else None
        )
        self._passthrough: list[str] | None = None
        self._overwritten = outputs
        # Rows the model has succeeded on: a model that has failed on every row so far is broken,
        # not fed bad rows, and fails the shard instead of sending its whole input to the errors.
        self._rows_ok = 0

    def _model_input(self, batch: pa.RecordBatch, files: dict[str, list[Any]] | None) -> pd.DataFrame:
        if not files:
            fast = self.fn.numeric_input([batch.column(c) for c in self.columns])
            if fast is not None:
                return fast
        frame = batch.select(list(dict.fromkeys(self.columns))).to_pandas()
        data: dict[str, Any] = {}
        for feature, column in zip(self.features, self.columns, strict=True):
            values = frame[column]
            if files is not None and column in files:
                values = pd.Series(files[column], index=values.index, dtype=object)
            data[feature] = values
        return self.fn.prepare_input(pd.DataFrame(data, index=frame.index))

    def _fetched(self, batch: pa.RecordBatch, fetched: FetchedBatch | None) -> FetchedBatch | None:
        if fetched is None and self.fetcher is not None:
            return self.fetcher.submit(batch).result()
        return fetched

    def _good_rows(
        self, batch: pa.RecordBatch, fetched: FetchedBatch | None
    ) -> tuple[pa.RecordBatch, dict[str, list[Any]] | None, list[int] | None, dict[int, RowError]]:
        """The rows whose files were read, their files, their positions in ``batch`` (None: all rows),
        and the other rows' errors."""
        failed = dict(fetched.errors) if fetched is not None else {}
        if failed and self.cfg.fail_fast:
            raise failed[min(failed)]
        if not failed:
            return batch, (fetched.values if fetched is not None else None), None, failed
        assert fetched is not None
        good = [i for i in range(batch.num_rows) if i not in failed]
        files = {column: [values[i] for i in good] for column, values in fetched.values.items()}
        return batch.take(pa.array(good, pa.int64())), files, good, failed

    def _check_rows(self, outputs: pd.DataFrame, rows: int) -> None:
        if len(outputs) != rows:
            raise ValueError(
                f"Function {self.fn.method} returned {len(outputs)} rows for {rows} input rows. Only "
                "partitioned functions (@partitioned_api) may return a different number of rows than they are given."
            )

    def _call(
        self, prepared: pd.DataFrame
    ) -> tuple[pd.DataFrame | None, list[int] | None, dict[int, RowError]]:
        """The model's outputs for the rows it succeeds on, their positions (None: all), and the failed
        rows' errors."""
        try:
            outputs = self.fn.call_prepared(prepared, self.cfg.params)
        except Exception as exc:
            if self.cfg.fail_fast:
                raise
            pieces, errors = self._isolate(prepared, exc)
            # A model that failed on every row so far is broken, unless it said each row was bad.
            rows_rejected = all(e.code != MODEL_ERROR for e in errors.values())
            if not pieces and self._rows_ok == 0 and not rows_rejected:
                raise
            ok = [a + i for a, out in pieces for i in range(len(out))]
            merged = pd.concat([out for _, out in pieces], ignore_index=True) if pieces else None
            self._rows_ok += len(ok)
            return merged, ok, errors
        self._check_rows(outputs, len(prepared))
        self._rows_ok += len(prepared)
        return outputs, None, {}

    def _isolate(
        self, prepared: pd.DataFrame, exc: Exception
    ) -> tuple[list[tuple[int, pd.DataFrame]], dict[int, RowError]]:
        """Find the rows the model fails on by calling it on halves of a failed range, down to single rows.

        One bad row in a batch of n costs about 2*log2(n) extra calls instead of n row-by-row calls.
        """
        pieces: list[tuple[int, pd.DataFrame]] = []
        errors: dict[int, RowError] = {}
        failing: list[tuple[int, int, Exception]] = [(0, len(prepared), exc)]
        while failing:
            if self.cfg.stop.is_set():
                raise Stopped()
            lo, hi, error = failing.pop()
            if hi - lo == 1:
                errors[lo] = _model_error(error)
                continue
            mid = (lo + hi) // 2
            for a, b in ((lo, mid), (mid, hi)):
                try:
                    out = self.fn.call_prepared(prepared.iloc[a:b].reset_index(drop=True), self.cfg.params)
                except Exception as part_exc:  # noqa: BLE001 - narrowed further, down to one row
                    failing.append((a, b, part_exc))
                    continue
                self._check_rows(out, b - a)
                pieces.append((a, out))
        pieces.sort(key=lambda piece: piece[0])
        return pieces, errors

    def __call__(self, batch: pa.RecordBatch, fetched: FetchedBatch | None = None) -> _Result:
        fetched = self._fetched(batch, fetched)
        good, files, positions, failed = self._good_rows(batch, fetched)
        output = None
        if good.num_rows:
            outputs, ok, model_failed = self._call(self._model_input(good, files))
            for row, error in model_failed.items():
                failed[positions[row] if positions is not None else row] = error
            if outputs is not None:
                if ok is not None:
                    good = good.take(pa.array(ok, pa.int64()))
                output = self._output_batch(good, outputs)
        return _Result(output, _error_batch(batch, failed) if failed else None, batch.num_rows)

    def _output_batch(self, batch: pa.RecordBatch, outputs: pd.DataFrame) -> pa.RecordBatch:
        if self._passthrough is None:
            # A model output named like an input column replaces it, as in Snowflake's DataFrame output.
            self._passthrough = [n for n in batch.schema.names if n.upper() not in self._overwritten]
        arrays = [batch.column(n) for n in self._passthrough]
        names = list(self._passthrough)
        for name, array in self.fn.output_arrays(outputs):
            names.append(name)
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def partition(self, batch: pa.RecordBatch, key: pa.Scalar | None) -> _Result:
        """A whole partition through a partitioned function: the partition column, then the outputs.

        The function needs the partition whole, so when it raises, every row of the partition fails.
        """
        good, files, positions, failed = self._good_rows(batch, self._fetched(batch, None))
        output = None
        if good.num_rows:
            try:
                outputs = self.fn.call_prepared(self._model_input(good, files), self.cfg.params)
            except Exception as exc:
                if self.cfg.fail_fast or self._rows_ok == 0:
                    raise
                error = _model_error(exc)
                failed.update(
                    dict.fromkeys(positions if positions is not None else range(batch.num_rows), error)
                )
            else:
                self._rows_ok += good.num_rows
                names, arrays = [], []
                if key is not None:
                    assert self.cfg.partition_column is not None
                    names.append(self.cfg.partition_column)
                    arrays.append(pa.repeat(key, len(outputs)))
                for name, array in self.fn.output_arrays(outputs):
                    names.append(name)
                    arrays.append(array)
                output = pa.RecordBatch.from_arrays(arrays, names=names)
        return _Result(output, _error_batch(batch, failed) if failed else None, batch.num_rows)

    def close(self) -> None:
        if self.fetcher is not None:
            self.fetcher.close()


_SPILL_BUCKET_BYTES = 128 << 20
_MAX_SPILL_BUCKETS = 256


def _partition_keys(values: pa.Array | pa.ChunkedArray) -> pd.Series:
    """Partition values as text (None for null), whatever the batch: pandas would turn an integer
    column with a null into floats, which hash differently, and merge integers above 2**53."""
    text = values if pa.types.is_string(values.type) else values.cast(pa.string())
    return pd.Series(text.to_pylist(), dtype=object)


class _Spill:
    """This shard's rows of a partitioned job, routed by partition hash into local Parquet buckets.

    Every row of one partition lands in one bucket, so a bucket at a time is all that must be
    in memory (a single partition larger than that is held whole: the function needs it whole).
    """

    def __init__(self, folder: Path, cfg: PipelineConfig, buckets: int) -> None:
        self.folder = folder
        self.cfg = cfg
        self.buckets = buckets
        self._writers: dict[int, pq.ParquetWriter] = {}

    def add(self, batch: pa.RecordBatch) -> int:
        """Keep the rows of ``batch`` that belong to this shard; returns how many were kept."""
        column = self.cfg.partition_column
        if column is None:
            self._write(0, batch)
            return int(batch.num_rows)
        hashes = pd.util.hash_pandas_object(_partition_keys(batch.column(column)), index=False).to_numpy()
        shards = self.cfg.partition_shards
        mine = hashes % shards == self.cfg.shard_index
        bucket = (hashes // shards) % self.buckets
        kept = 0
        for b in np.unique(bucket[mine]):
            rows = batch.filter(pa.array(mine & (bucket == b)))
            self._write(int(b), rows)
            kept += int(rows.num_rows)
        return kept

    def _write(self, bucket: int, batch: pa.RecordBatch) -> None:
        writer = self._writers.get(bucket)
        if writer is None:
            writer = pq.ParquetWriter(self.folder / f"{bucket:05d}.parquet", batch.schema, compression="none")
            self._writers[bucket] = writer
        writer.write_batch(batch)

    def partitions(self) -> Iterator[tuple[pa.Scalar | None, pa.Table]]:
        """Each partition whole, bucket by bucket."""
        for writer in self._writers.values():
            writer.close()
        for bucket in sorted(self._writers):
            table = pq.read_table(self.folder / f"{bucket:05d}.parquet")
            column = self.cfg.partition_column
            if column is None:
                yield None, table
                continue
            codes, _ = pd.factorize(_partition_keys(table.column(column)), use_na_sentinel=False)
            order = np.argsort(codes, kind="stable")
            table = table.take(pa.array(order))
            sorted_codes = codes[order]
            starts = [0, *(np.flatnonzero(np.diff(sorted_codes)) + 1).tolist(), len(sorted_codes)]
            for lo, hi in zip(starts[:-1], starts[1:], strict=True):
                part = table.slice(lo, hi - lo)
                yield part.column(column)[0], part


def _producer(
    target: Callable[[], None], errors: list[BaseException], stop: threading.Event
) -> threading.Thread:
    def run() -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            errors.append(exc)
            stop.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _put(q: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise Stopped()
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue[Any], stop: threading.Event) -> Any:
    while True:
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            if stop.is_set():
                raise Stopped() from None


class ShardPipeline:
    """read -> infer -> write for one shard attempt.

    ``start_reading`` may be called before the model is loaded, so the first batches are
    decoded (outside the GIL) while the model's framework is being imported.
    """

    def __init__(self, cfg: PipelineConfig) -> None:
        self.cfg = cfg
        self._errors: list[BaseException] = []
        self._inbox: queue.Queue[Any] = queue.Queue(maxsize=cfg.queue_depth)
        self._reader: threading.Thread | None = None
        self._threads: list[threading.Thread] = []
        self.rows_in = 0
        """Input rows processed: the shard's progress, whatever number of rows the function returns."""
        self.rows_failed = 0
        """Input rows that failed (written to the error files); counted in ``rows_in`` too."""
        self.prefetcher: Prefetcher | None = None

    def start_reading(self) -> None:
        if self._reader is not None:
            return
        cfg, inbox = self.cfg, self._inbox

        def read() -> None:
            for batch in read_slices(cfg.input_storage, cfg.slices, cfg.batch_rows):
                _put(inbox, batch, cfg.stop)
            _put(inbox, _DONE, cfg.stop)

        self._reader = _producer(read, self._errors, cfg.stop)

    def close(self) -> None:
        """Stop reading (used when the model never loaded)."""
        self.cfg.stop.set()
        if self._reader is not None:
            self._reader.join(timeout=5)

    def run(self, fn: ModelFunction, on_rows: Callable[[int], None]) -> list[OutputFile]:
        """Process every slice; ``on_rows`` is called with the input rows processed after each batch.

        Returns the data files, then the error files (``kind="errors"``).
        """
        cfg, stop, errors = self.cfg, self.cfg.stop, self._errors
        outbox: queue.Queue[Any] = queue.Queue(maxsize=cfg.queue_depth)
        writer = _Writer(cfg.output_storage, cfg)
        error_writer = _Writer(cfg.output_storage, cfg, stem="errors", kind="errors")

        def write() -> None:
            while (item := _get(outbox, stop)) is not _DONE:
                result: _Result = item
                if result.output is not None:
                    writer.write(result.output)
                if result.errors is not None:
                    error_writer.write(result.errors)
                    self._failed(result.errors)
                self.rows_in += result.rows
                on_rows(self.rows_in)

        inference = _Inference(fn, cfg)
        self.start_reading()
        writer_thread = _producer(write, errors, stop)
        feed = (
            self._run_partitioned if cfg.partition_column is not None or fn.partitioned else self._run_batches
        )
        try:
            feed(fn, inference, outbox)
            _put(outbox, _DONE, stop)
            writer_thread.join()
        except Stopped:
            if errors:
                raise errors[0] from None
            raise
        except BaseException:
            stop.set()
            raise
        finally:
            inference.close()
            assert self._reader is not None
            self._reader.join(timeout=5)
            for thread in self._threads:
                thread.join(timeout=5)
        if errors:
            raise errors[0]
        return writer.close() + error_writer.close()

    def _failed(self, rows: pa.RecordBatch) -> None:
        """Count (and log the first few of) the rows of an error batch; enforce ``max_failed_rows``."""
        before = self.rows_failed
        self.rows_failed += rows.num_rows
        codes = rows.column("ERROR_CODE").to_pylist()
        messages = rows.column("ERROR_MESSAGE").to_pylist()
        for i in range(max(0, min(rows.num_rows, _LOGGED_ERROR_ROWS - before))):
            log.warning("Row failed (%s): %s", codes[i], messages[i])
        if before < _LOGGED_ERROR_ROWS <= self.rows_failed:
            log.warning("%d rows failed so far; later failed rows are not logged.", self.rows_failed)
        limit = self.cfg.max_failed_rows
        if limit is not None and self.rows_failed > limit:
            raise TooManyFailedRows(
                f"{self.rows_failed} input rows failed, more than JobSpec.max_failed_rows={limit} allows. "
                f"Last failure: {codes[-1]}: {messages[-1]}"
            )

    def _source(self, inference: _Inference) -> queue.Queue[Any]:
        """Where the model takes its batches from: the reader's queue, or the prefetcher's (file columns)."""
        cfg, stop = self.cfg, self.cfg.stop
        if inference.fetcher is None or not cfg.prefetch:
            return self._inbox
        prefetcher = Prefetcher(
            inference.fetcher, max_rows=cfg.prefetch_rows, max_bytes=cfg.prefetch_bytes, stop=stop
        )
        self.prefetcher = prefetcher
        # Unbounded: the prefetcher's budget of rows and bytes bounds what waits here.
        fetched: queue.Queue[Any] = queue.Queue()

        def prefetch() -> None:
            while (batch := _get(self._inbox, stop)) is not _DONE:
                pending = prefetcher.admit(batch)
                if pending is None:
                    raise Stopped()
                fetched.put(pending)
            fetched.put(_DONE)

        self._threads.append(_producer(prefetch, self._errors, stop))
        return fetched

    def _run_batches(self, fn: ModelFunction, inference: _Inference, outbox: queue.Queue[Any]) -> None:
        """Each input batch through the function, ``num_workers`` calls in flight, in input order."""
        cfg, stop = self.cfg, self.cfg.stop
        source = self._source(inference)
        prefetcher = self.prefetcher

        def infer(item: pa.RecordBatch | PendingFetch) -> _Result:
            if isinstance(item, PendingFetch):
                assert prefetcher is not None
                try:
                    return inference(item.batch, item.result())
                finally:
                    prefetcher.release(item)
            return inference(item)

        if cfg.num_workers <= 1:
            while (item := _get(source, stop)) is not _DONE:
                _put(outbox, infer(item), stop)
            return
        pool = ThreadPoolExecutor(max_workers=cfg.num_workers)
        pending: deque[Future[_Result]] = deque()
        try:
            while (item := _get(source, stop)) is not _DONE:
                pending.append(pool.submit(infer, item))
                while len(pending) >= cfg.num_workers:
                    _put(outbox, pending.popleft().result(), stop)
            while pending:
                _put(outbox, pending.popleft().result(), stop)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_partitioned(self, fn: ModelFunction, inference: _Inference, outbox: queue.Queue[Any]) -> None:
        """Gather this shard's partitions on local disk, then call the function partition by partition.

        A partitioned function (@partitioned_api) gets each partition whole and may return any
        number of rows; other TABLE_FUNCTIONs get batches that never mix two partitions. Files of
        file columns are read when their partition's turn comes.
        """
        cfg, stop = self.cfg, self.cfg.stop
        with tempfile.TemporaryDirectory(prefix="runbatch-partitions-", dir=cfg.spill_dir) as tmp:
            spill: _Spill | None = None
            while (batch := _get(self._inbox, stop)) is not _DONE:
                if spill is None:
                    spill = _Spill(Path(tmp), cfg, self._spill_buckets(batch))
                spill.add(batch)
            if spill is None:
                return
            for key, table in spill.partitions():
                if stop.is_set():
                    raise Stopped()
                if fn.partitioned:
                    (batch,) = table.combine_chunks().to_batches()  # a partition is never empty
                    _put(outbox, inference.partition(batch, key), stop)
                    continue
                for batch in table.to_batches(max_chunksize=cfg.batch_rows):
                    _put(outbox, inference(batch), stop)

    def _spill_buckets(self, first: pa.RecordBatch) -> int:
        rows = sum(s.rows for s in self.cfg.slices)
        estimate = rows * first.nbytes / max(first.num_rows, 1) / max(self.cfg.partition_shards, 1)
        return max(1, min(_MAX_SPILL_BUCKETS, math.ceil(float(estimate) / _SPILL_BUCKET_BYTES)))


def run_pipeline(fn: ModelFunction, cfg: PipelineConfig, on_rows: Callable[[int], None]) -> list[OutputFile]:
    """Process every slice of ``cfg`` with ``fn`` (see ShardPipeline)."""
    return ShardPipeline(cfg).run(fn, on_rows)
