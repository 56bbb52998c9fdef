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


PART_SIG = ModelSignature(
    [FeatureSpec("x", DataType.INT64)],
    [FeatureSpec("n", DataType.INT64), FeatureSpec("total", DataType.INT64)],
)


def _stats(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
    return pd.DataFrame({"n": [len(df)], "total": [int(df["x"].sum())]})


def test_partitions_are_whole_and_owned_by_one_shard(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Tiny spill buckets, so each shard routes its rows through many local files.
    monkeypatch.setattr("runbatch.runtime.pipeline._SPILL_BUCKET_BYTES", 2048)
    fn = ModelFunction("predict", PART_SIG, _stats, "TABLE_FUNCTION", True)
    slices = [InputSlice(key=f"in/f{i}.parquet", offset=0, rows=1000) for i in range(2)]
    results = []
    for shard in range(2):
        cfg = _cfg(
            storage,
            slices,
            output_prefix=f"out/{shard}",
            shard_index=shard,
            partition_column="ID",
            partition_shards=2,
            feature_columns={"x": "X"},
        )
        progress: list[int] = []
        files = run_pipeline(fn, cfg, progress.append)
        out = pa.concat_tables([pq.read_table(storage.open_input_file(f.key)) for f in files])
        assert out.column_names == ["ID", "n", "total"]
        results.append((out.to_pandas(), progress[-1]))
    # ID is unique per row: 2,000 partitions of one row each, split between the two shards.
    both = pd.concat([r[0] for r in results])
    assert sorted(both["ID"]) == list(range(2000))
    assert (both["n"] == 1).all() and (both["total"] == both["ID"]).all()
    assert results[0][1] + results[1][1] == 2000 and min(r[1] for r in results) > 800


def test_partition_column_groups_rows_and_keeps_input_columns(storage: Storage) -> None:
    def parts_seen(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        # The partition (G = X // 100) is not a model input; the model can still tell which it got.
        return pd.DataFrame({"y": (df["x"] // 100).nunique()}, index=df.index)

    sig = ModelSignature([FeatureSpec("x", DataType.INT64)], [FeatureSpec("y", DataType.INT64)])
    fn = ModelFunction("predict", sig, parts_seen, "TABLE_FUNCTION", False)
    with storage.open_output_stream("in/g.parquet") as sink:
        xs = pa.array(range(300), pa.int64())
        pq.write_table(
            pa.table({"X": xs, "G": pa.compute.cast(pa.compute.divide(xs, 100), pa.int64())}), sink
        )
    cfg = _cfg(
        storage,
        [InputSlice(key="in/g.parquet", offset=0, rows=300)],
        partition_column="G",
        batch_rows=64,
    )
    files = run_pipeline(fn, cfg, lambda rows: None)
    out = pa.concat_tables([pq.read_table(storage.open_input_file(f.key)) for f in files]).to_pandas()
    assert list(out.columns) == ["X", "G", "y"]
    assert sorted(out["X"]) == list(range(300))
    assert set(out["y"]) == {1}  # no call saw two partitions, though 64 rows span two of them in input order


def test_a_row_wise_function_must_keep_the_row_count(storage: Storage) -> None:
    def drops(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        return pd.DataFrame({"y": df["x"].iloc[:1]})

    fn = ModelFunction("predict", SIG, drops, "TABLE_FUNCTION", False)
    cfg = _cfg(storage, [InputSlice(key="in/f0.parquet", offset=0, rows=100)])
    with pytest.raises(ValueError) as exc:
        run_pipeline(fn, cfg, lambda rows: None)
    assert str(exc.value) == (
        "Function predict returned 1 rows for 10 input rows. Only partitioned functions (@partitioned_api) may "
        "return a different number of rows than they are given."
    )


def test_a_partition_is_whole_even_when_some_batches_hold_nulls(storage: Storage) -> None:
    # Batches of an int64 key column: pandas makes floats of the ones with a null, which would hash
    # 5 and 5.0 apart and split partition 5 between shards.
    keys = pa.array([5, 7, None, 5, 2**53 + 1, 2**53, 7, 5, None, 2**53 + 1] * 30, pa.int64())
    with storage.open_output_stream("in/k.parquet") as sink:
        pq.write_table(pa.table({"K": keys, "X": pa.array(range(300), pa.int64())}), sink, row_group_size=7)
    fn = ModelFunction("predict", PART_SIG, _stats, "TABLE_FUNCTION", True)
    seen = []
    for shard in range(2):
        cfg = _cfg(
            storage,
            [InputSlice(key="in/k.parquet", offset=0, rows=300)],
            output_prefix=f"out/k{shard}",
            shard_index=shard,
            partition_column="K",
            partition_shards=2,
            batch_rows=4,
        )
        files = run_pipeline(fn, cfg, lambda rows: None)
        seen += [pq.read_table(storage.open_input_file(f.key)).to_pylist() for f in files]
    rows = sorted(((r["K"] is None, r["K"] or 0), r["n"]) for part in seen for r in part)
    assert rows == [
        ((False, 5), 90),
        ((False, 7), 60),
        ((False, 2**53), 30),
        ((False, 2**53 + 1), 60),
        ((True, 0), 60),
    ]
