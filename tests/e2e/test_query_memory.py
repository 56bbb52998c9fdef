"""A query over 2 GiB of Parquet streams: neither the server nor the client holds the result whole.

Peak memory is read from the kernel (VmHWM, reset through /proc/<pid>/clear_refs; runbatch runs on
Linux), so the test measures the real processes: the `runbatch server` the HTTP session talks to, and this one.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.snowpark import Session
from tests.services import ServerProcess

pytestmark = pytest.mark.timeout(900)

ROWS_PER_BATCH = 1 << 20
BATCHES_PER_FILE = 8
FILES = 4  # 4 files x 8 x 1 Mi rows x 8 float64 columns = 2 GiB, incompressible
COLUMNS = 8
MiB = 1 << 20


@pytest.fixture
def fresh_db_http(http_session: Session) -> str:
    name = f"T_{uuid.uuid4().hex[:10].upper()}"
    http_session.sql(f"CREATE DATABASE {name}").collect()
    http_session.sql("CREATE STAGE DATA").collect()
    return name


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM in /proc status")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def _write_big_input(folder: Path) -> int:
    """Random doubles (Parquet cannot shrink them) plus an exact ID column; returns the ID sum."""
    rng = np.random.default_rng(0)
    schema = pa.schema([("ID", pa.int64())] + [(f"F{i}", pa.float64()) for i in range(COLUMNS - 1)])
    next_id = 0
    for f in range(FILES):
        with pq.ParquetWriter(folder / f"part-{f}.parquet", schema, compression="none") as writer:
            for _ in range(BATCHES_PER_FILE):
                ids = np.arange(next_id, next_id + ROWS_PER_BATCH, dtype=np.int64)
                next_id += ROWS_PER_BATCH
                cols = [pa.array(ids)] + [pa.array(rng.random(ROWS_PER_BATCH)) for _ in range(COLUMNS - 1)]
                writer.write_batch(pa.record_batch(cols, schema=schema), row_group_size=ROWS_PER_BATCH // 4)
    return next_id * (next_id - 1) // 2


def test_a_2_gib_query_streams_with_bounded_memory(
    http_session: Session, server_process: ServerProcess, fresh_db_http: str, tmp_path: Path
) -> None:
    session = http_session
    # Find the stage's folder in the server's local storage, then write the input there directly:
    # uploading 2 GiB through PUT would only make the test slower.
    (tmp_path / "marker.txt").write_text("x")
    session.file.put(str(tmp_path / "marker.txt"), "@DATA/big/")
    [marker] = list(server_process.home.rglob("big/marker.txt"))
    folder = marker.parent
    marker.unlink()
    expected_ids = _write_big_input(folder)
    size = sum(p.stat().st_size for p in folder.iterdir())
    assert size > 2 * 1024 * MiB

    assert server_process.proc is not None
    server_pid, client_pid = server_process.proc.pid, os.getpid()
    _reset_peak(server_pid)
    _reset_peak(client_pid)
    server_before, client_before = _peak_rss(server_pid), _peak_rss(client_pid)

    rows, id_sum, frames = 0, 0, 0
    for frame in session.sql("SELECT ID, F0 + F1 AS S, F6 FROM @DATA/big/ WHERE F2 >= 0").to_pandas_batches():
        rows += len(frame)
        id_sum += int(frame["ID"].sum())
        frames += 1
    assert rows == FILES * BATCHES_PER_FILE * ROWS_PER_BATCH
    assert id_sum == expected_ids
    assert frames > 100  # streamed as many record batches, not one table

    server_growth = _peak_rss(server_pid) - server_before
    client_growth = _peak_rss(client_pid) - client_before
    # The result alone is 768 MiB (3 columns); the input 2 GiB. Each side holds a few batches.
    assert server_growth < 400 * MiB, f"server peak grew by {server_growth // MiB} MiB"
    assert client_growth < 300 * MiB, f"client peak grew by {client_growth // MiB} MiB"
