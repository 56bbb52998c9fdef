"""Turning input files into shards: footers give row counts, rows are split evenly by replica."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from runbatch.errors import InvalidArgumentError
from runbatch.stage.storage import Storage
from runbatch.wire.jobs import InputSlice

__all__ = ["InputFile", "list_input_files", "plan_partitioned", "plan_slices", "read_input_file"]


@dataclass(frozen=True)
class InputFile:
    key: str
    rows: int
    schema: pa.Schema


def read_input_file(storage: Storage, key: str, shown: str) -> InputFile:
    try:
        with storage.open_input_file(key) as f:
            parquet = pq.ParquetFile(f)
            # schema_arrow applies the Arrow schema stored by the writer (time zones, large and
            # dictionary types), as reading the data does.
            return InputFile(key, parquet.metadata.num_rows, parquet.schema_arrow)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidArgumentError(
            f"Input file {shown} is not a readable Parquet file ({exc}). Point the input at Parquet files only, "
            "e.g. session.read.option('pattern', '.*\\\\.parquet').parquet(...)."
        ) from None


def list_input_files(
    storage: Storage, prefix: str, shown_root: str, keep: Callable[[str], bool] | None = None
) -> list[InputFile]:
    """Parquet files under ``prefix`` (a folder) whose key ``keep`` accepts; names starting with '_'
    or '.' are not data."""
    files = []
    folder = prefix.strip("/") + "/" if prefix.strip("/") else ""  # "": an external stage's root
    for entry in storage.list(folder):
        rel = entry.key[len(folder) :]
        if any(part.startswith(("_", ".")) for part in rel.split("/")) or ".__tmp_" in rel:
            continue
        if keep is not None and not keep(entry.key):
            continue
        files.append(read_input_file(storage, entry.key, f"{shown_root.rstrip('/')}/{rel}"))
    return files


def plan_partitioned(files: list[InputFile], replicas: int) -> list[list[InputSlice]]:
    """Every shard gets the whole input and keeps the partitions whose hash falls to it (see
    runbatch.runtime.pipeline): a partition is never split, wherever its rows lie."""
    total = sum(f.rows for f in files)
    whole = [InputSlice(key=f.key, offset=0, rows=f.rows) for f in files if f.rows]
    return [list(whole) for _ in range(max(1, min(replicas, total)))]


def plan_slices(files: list[InputFile], replicas: int) -> list[list[InputSlice]]:
    """Split the rows of ``files`` into at most ``replicas`` contiguous, near-equal shards."""
    total = sum(f.rows for f in files)
    shards = max(1, min(replicas, total))
    base, extra = divmod(total, shards)
    targets = [base + (1 if i < extra else 0) for i in range(shards)]
    plan: list[list[InputSlice]] = [[] for _ in range(shards)]
    shard, room = 0, targets[0]
    for f in files:
        offset = 0
        while offset < f.rows:
            while room == 0:
                shard += 1
                room = targets[shard]
            take = min(room, f.rows - offset)
            plan[shard].append(InputSlice(key=f.key, offset=offset, rows=take))
            offset += take
            room -= take
    return plan
