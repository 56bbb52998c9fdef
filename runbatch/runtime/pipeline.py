"""The streaming pipeline of one shard: read -> infer -> write, each stage in its own thread.

Memory stays bounded whatever the input size: bounded queues hold at most a few record
batches between stages. Reading and writing (pyarrow, GIL released) overlap the model call.
Output files are written under the attempt's own prefix; the control plane commits them.
"""

from __future__ import annotations

import base64
import logging
import math
import mimetypes
import queue
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runbatch.inference.function import ModelFunction
from runbatch.ml.model.batch import FileEncoding
from runbatch.stage.paths import parse_stage_path
from runbatch.stage.storage import Storage
from runbatch.wire.jobs import InputSlice, OutputFile

__all__ = ["PipelineConfig", "ShardPipeline", "Stopped", "auto_batch_rows", "read_slices", "run_pipeline"]

log = logging.getLogger("runbatch.runtime")

_DONE = object()
_TARGET_BATCH_BYTES = 8 << 20


class Stopped(Exception):
    """The shard was asked to stop (cancelled, or superseded by another attempt)."""


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

    def __init__(self, storage: Storage, cfg: PipelineConfig) -> None:
        self.storage = storage
        self.cfg = cfg
        self.files: list[OutputFile] = []
        self._writer: pq.ParquetWriter | None = None
        self._sink: Any = None
        self._key = ""
        self._rows = 0
        self._bytes = 0

    def write(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._key = (
                f"{self.cfg.output_prefix}/part-{self.cfg.shard_index:05d}-{len(self.files):05d}.parquet"
            )
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
        self.files.append(OutputFile(key=self._key, rows=self._rows, bytes=size))
        self._writer, self._sink, self._rows, self._bytes = None, None, 0, 0

    def close(self) -> list[OutputFile]:
        self._roll()
        return self.files


def _file_loader(cfg: PipelineConfig, encoding: FileEncoding) -> Callable[[Any], Any]:
    def load(path: Any) -> Any:
        if path is None:
            return None
        stage_path = parse_stage_path(str(path), database=cfg.default_database, schema=cfg.default_schema)
        data = cfg.input_storage.read_bytes(stage_path.key)
        if encoding is FileEncoding.RAW_BYTES:
            return data
        encoded = base64.b64encode(data).decode("ascii")
        if encoding is FileEncoding.BASE64:
            return encoded
        mime = mimetypes.guess_type(stage_path.path)[0] or "application/octet-stream"
        return f"data:{mime};base64,{encoded}"

    return load


class _Inference:
    """Turns one input batch into one output batch: input columns plus the model's outputs."""

    def __init__(self, fn: ModelFunction, cfg: PipelineConfig) -> None:
        self.fn = fn
        self.cfg = cfg
        self.features = [f.name for f in fn.signature.inputs]
        self.columns = [cfg.feature_columns[f] for f in self.features]
        outputs = {f.name.upper() for f in fn.signature.outputs}
        self._loaders = {
            column: _file_loader(cfg, FileEncoding(opts["convert_to"]))
            for column, opts in (cfg.column_handling or {}).items()
        }
        self._files_pool = (
            ThreadPoolExecutor(max_workers=8, thread_name_prefix="file-fetch") if self._loaders else None
        )
        self._passthrough: list[str] | None = None
        self._overwritten = outputs

    def _model_input(self, batch: pa.RecordBatch) -> pd.DataFrame:
        if not self._loaders:
            fast = self.fn.numeric_input([batch.column(c) for c in self.columns])
            if fast is not None:
                return fast
        frame = batch.select(list(dict.fromkeys(self.columns))).to_pandas()
        data: dict[str, Any] = {}
        for feature, column in zip(self.features, self.columns, strict=True):
            values = frame[column]
            loader = self._loaders.get(column)
            if loader is not None:
                assert self._files_pool is not None
                values = pd.Series(
                    list(self._files_pool.map(loader, values)), index=values.index, dtype=object
                )
            data[feature] = values
        return self.fn.prepare_input(pd.DataFrame(data, index=frame.index))

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        outputs = self.fn.call_prepared(self._model_input(batch), self.cfg.params)
        if len(outputs) != batch.num_rows:
            raise ValueError(
                f"Function {self.fn.method} returned {len(outputs)} rows for {batch.num_rows} input rows. Only "
                "partitioned functions (@partitioned_api) may return a different number of rows than they are given."
            )
        if self._passthrough is None:
            # A model output named like an input column replaces it, as in Snowflake's DataFrame output.
            self._passthrough = [n for n in batch.schema.names if n.upper() not in self._overwritten]
        arrays = [batch.column(n) for n in self._passthrough]
        names = list(self._passthrough)
        for name, array in self.fn.output_arrays(outputs):
            names.append(name)
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def partition(self, batch: pa.RecordBatch, key: pa.Scalar | None) -> pa.RecordBatch:
        """A whole partition through a partitioned function: the partition column, then the outputs."""
        outputs = self.fn.call_prepared(self._model_input(batch), self.cfg.params)
        names, arrays = [], []
        if key is not None:
            assert self.cfg.partition_column is not None
            names.append(self.cfg.partition_column)
            arrays.append(pa.repeat(key, len(outputs)))
        for name, array in self.fn.output_arrays(outputs):
            names.append(name)
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, names=names)

    def close(self) -> None:
        if self._files_pool is not None:
            self._files_pool.shutdown(wait=False, cancel_futures=True)


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
        self.rows_in = 0
        """Input rows processed: the shard's progress, whatever number of rows the function returns."""

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
        """Process every slice; ``on_rows`` is called with the input rows processed after each batch."""
        cfg, stop, errors = self.cfg, self.cfg.stop, self._errors
        outbox: queue.Queue[Any] = queue.Queue(maxsize=cfg.queue_depth)
        writer = _Writer(cfg.output_storage, cfg)

        def write() -> None:
            while (item := _get(outbox, stop)) is not _DONE:
                batch, consumed = item
                writer.write(batch)
                self.rows_in += consumed
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
        if errors:
            raise errors[0]
        return writer.close()

    def _run_batches(self, fn: ModelFunction, inference: _Inference, outbox: queue.Queue[Any]) -> None:
        """Each input batch through the function, ``num_workers`` calls in flight, in input order."""
        cfg, stop = self.cfg, self.cfg.stop

        def infer(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, int]:
            return inference(batch), batch.num_rows

        if cfg.num_workers <= 1:
            while (batch := _get(self._inbox, stop)) is not _DONE:
                _put(outbox, infer(batch), stop)
            return
        pool = ThreadPoolExecutor(max_workers=cfg.num_workers)
        pending: deque[Future[tuple[pa.RecordBatch, int]]] = deque()
        try:
            while (batch := _get(self._inbox, stop)) is not _DONE:
                pending.append(pool.submit(infer, batch))
                while len(pending) >= cfg.num_workers:
                    _put(outbox, pending.popleft().result(), stop)
            while pending:
                _put(outbox, pending.popleft().result(), stop)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _run_partitioned(self, fn: ModelFunction, inference: _Inference, outbox: queue.Queue[Any]) -> None:
        """Gather this shard's partitions on local disk, then call the function partition by partition.

        A partitioned function (@partitioned_api) gets each partition whole and may return any
        number of rows; other TABLE_FUNCTIONs get batches that never mix two partitions.
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
                    _put(outbox, (inference.partition(batch, key), table.num_rows), stop)
                    continue
                for batch in table.to_batches(max_chunksize=cfg.batch_rows):
                    _put(outbox, (inference(batch), batch.num_rows), stop)

    def _spill_buckets(self, first: pa.RecordBatch) -> int:
        rows = sum(s.rows for s in self.cfg.slices)
        estimate = rows * first.nbytes / max(first.num_rows, 1) / max(self.cfg.partition_shards, 1)
        return max(1, min(_MAX_SPILL_BUCKETS, math.ceil(float(estimate) / _SPILL_BUCKET_BYTES)))


def run_pipeline(fn: ModelFunction, cfg: PipelineConfig, on_rows: Callable[[int], None]) -> list[OutputFile]:
    """Process every slice of ``cfg`` with ``fn`` (see ShardPipeline)."""
    return ShardPipeline(cfg).run(fn, on_rows)
