"""The streaming pipeline reads exactly its slices, keeps order, rolls files and stops on request."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.inference.function import ModelFunction
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature
from runbatch.runtime.pipeline import PipelineConfig, Stopped, read_slices, run_pipeline
from runbatch.stage.storage import Storage, open_storage
from runbatch.wire.jobs import InputSlice

SIG = ModelSignature([FeatureSpec("x", DataType.INT64)], [FeatureSpec("y", DataType.INT64)])


def _times_ten(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame({"y": df["x"] * 10})


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    store = open_storage(f"file://{tmp_path}")
    for i in range(2):
        ids = pa.array(range(i * 1000, (i + 1) * 1000), pa.int64())
        with store.open_output_stream(f"in/f{i}.parquet") as sink:
            pq.write_table(pa.table({"ID": ids, "X": ids}), sink, row_group_size=128)
    return store


def _cfg(storage: Storage, slices: list[InputSlice], **overrides: object) -> PipelineConfig:
    values: dict[str, object] = {
        "input_storage": storage,
        "output_storage": storage,
        "slices": slices,
        "output_prefix": "out/a",
        "shard_index": 0,
        "batch_rows": 10,
        "feature_columns": {"x": "X"},
        "params": {},
    }
    values.update(overrides)
    return PipelineConfig(**values)  # type: ignore[arg-type]


def test_read_slices_returns_exactly_the_named_rows(storage: Storage) -> None:
    slices = [
        InputSlice(key="in/f0.parquet", offset=990, rows=10),
        InputSlice(key="in/f1.parquet", offset=5, rows=300),
    ]
    batches = list(read_slices(storage, slices, batch_rows=64))
    ids = [i for b in batches for i in b.column("ID").to_pylist()]
    assert ids == list(range(990, 1000)) + list(range(1005, 1305))
    assert max(b.num_rows for b in batches) <= 64


@pytest.mark.parametrize("workers", [1, 3])
def test_pipeline_output_order_and_files(storage: Storage, workers: int) -> None:
    fn = ModelFunction("predict", SIG, _times_ten, "FUNCTION", False)
    slices = [
        InputSlice(key="in/f0.parquet", offset=0, rows=1000),
        InputSlice(key="in/f1.parquet", offset=0, rows=500),
    ]
    cfg = _cfg(
        storage,
        slices,
        output_prefix="out/attempt",
        shard_index=3,
        batch_rows=100,
        num_workers=workers,
        rows_per_file=600,
    )
    seen: list[int] = []
    files = run_pipeline(fn, cfg, seen.append)
    assert [(f.key, f.rows) for f in files] == [
        ("out/attempt/part-00003-00000.parquet", 600),
        ("out/attempt/part-00003-00001.parquet", 600),
        ("out/attempt/part-00003-00002.parquet", 300),
    ]
    assert seen[-1] == 1500
    table = pa.concat_tables(pq.read_table(storage.open_input_file(f.key)) for f in files)
    assert table.column_names == ["ID", "X", "y"]
    assert table.column("ID").to_pylist() == list(range(1500))
    assert table.column("y").to_pylist() == [x * 10 for x in range(1500)]


def test_pipeline_stops_when_asked(storage: Storage) -> None:
    stop = threading.Event()

    def stopping(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        stop.set()
        return _times_ten(df, params)

    cfg = _cfg(storage, [InputSlice(key="in/f0.parquet", offset=0, rows=1000)], stop=stop)
    with pytest.raises(Stopped):
        run_pipeline(ModelFunction("predict", SIG, stopping, "FUNCTION", False), cfg, lambda _: None)


def test_a_model_error_surfaces(storage: Storage) -> None:
    def broken(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        raise ZeroDivisionError("boom")

    cfg = _cfg(storage, [InputSlice(key="in/f0.parquet", offset=0, rows=100)])
    with pytest.raises(ZeroDivisionError, match="boom"):
        run_pipeline(ModelFunction("predict", SIG, broken, "FUNCTION", False), cfg, lambda _: None)
