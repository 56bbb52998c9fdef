"""Error rows in the shard pipeline: failed rows are isolated and written apart, or fail the shard when asked."""

from __future__ import annotations

import threading
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.inference.function import ModelFunction
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature
from runbatch.runtime.pipeline import PipelineConfig, ShardPipeline, TooManyFailedRows, run_pipeline
from runbatch.runtime.stage_files import MountedStage, RowError, StageFiles
from runbatch.stage.storage import Storage, open_storage
from runbatch.wire.jobs import InputSlice, OutputFile

SIG = ModelSignature([FeatureSpec("x", DataType.INT64)], [FeatureSpec("y", DataType.INT64)])
FILE_SIG = ModelSignature([FeatureSpec("doc", DataType.BYTES)], [FeatureSpec("LENGTH", DataType.INT64)])


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    store = open_storage(f"file://{tmp_path}")
    ids = pa.array(range(100), pa.int64())
    with store.open_output_stream("in/x.parquet") as sink:
        pq.write_table(pa.table({"ID": ids, "X": ids}), sink)
    # 60 documents on a stage: row i names doc i; rows 7 and 40 name files that are not there.
    for i in range(60):
        if i not in (7, 40):
            store.write_bytes(f"stages/DB/S/DOCS/d/{i:02d}.txt", b"x" * i)
    paths = [f"@DB.S.DOCS/d/{i:02d}.txt" for i in range(60)]
    with store.open_output_stream("in/docs.parquet") as sink:
        pq.write_table(pa.table({"ID": pa.array(range(60), pa.int64()), "DOC": paths}), sink)
    return store


def _cfg(storage: Storage, key: str, rows: int, **overrides: object) -> PipelineConfig:
    values: dict[str, object] = {
        "input_storage": storage,
        "output_storage": storage,
        "slices": [InputSlice(key=key, offset=0, rows=rows)],
        "output_prefix": "out/a",
        "shard_index": 0,
        "batch_rows": 16,
        "feature_columns": {"x": "X"},
        "params": {},
    }
    values.update(overrides)
    return PipelineConfig(**values)  # type: ignore[arg-type]


def _read(storage: Storage, files: list[OutputFile], kind: str) -> pd.DataFrame:
    tables = [pq.read_table(storage.open_input_file(f.key)) for f in files if f.kind == kind]
    return pa.concat_tables(tables).to_pandas() if tables else pd.DataFrame()


class Picky:
    """y = 10x, but raises on multiples of 7 above 0; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0
        self.lock = threading.Lock()

    def __call__(self, df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        with self.lock:
            self.calls += 1
        bad = [int(x) for x in df["x"] if x and x % 7 == 0]
        if bad:
            raise ValueError(f"cannot take {bad[0]}")
        return pd.DataFrame({"y": df["x"] * 10})


@pytest.mark.parametrize("workers", [1, 3])
def test_rows_the_model_fails_on_are_isolated_and_written_as_error_rows(
    storage: Storage, workers: int
) -> None:
    picky = Picky()
    fn = ModelFunction("predict", SIG, picky, "FUNCTION", False)
    pipeline = ShardPipeline(_cfg(storage, "in/x.parquet", 100, num_workers=workers))
    files = pipeline.run(fn, lambda rows: None)
    assert [(f.key, f.kind) for f in files] == [
        ("out/a/part-00000-00000.parquet", "data"),
        ("out/a/errors-00000-00000.parquet", "errors"),
    ]
    out = _read(storage, files, "data")
    bad = [x for x in range(1, 100) if x % 7 == 0]
    assert list(out.columns) == ["ID", "X", "y"]
    assert list(out["ID"]) == [x for x in range(100) if x not in bad]
    assert list(out["y"]) == [10 * x for x in range(100) if x not in bad]
    errors = _read(storage, files, "errors")
    assert errors.to_dict(orient="list") == {
        "ID": bad,
        "X": bad,
        "ERROR_CODE": ["MODEL_ERROR"] * len(bad),
        "ERROR_MESSAGE": [f"ValueError: cannot take {x}" for x in bad],
    }
    assert (pipeline.rows_in, pipeline.rows_failed) == (100, 14)


def test_one_bad_row_costs_two_calls_per_halving_not_one_call_per_row(storage: Storage) -> None:
    def picky(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        calls.append(len(df))
        if (df["x"] == 37).any():
            raise ValueError("37")
        return pd.DataFrame({"y": df["x"]})

    calls: list[int] = []
    fn = ModelFunction("predict", SIG, picky, "FUNCTION", False)
    files = run_pipeline(fn, _cfg(storage, "in/x.parquet", 64, batch_rows=64), lambda rows: None)
    assert calls == [64, 32, 32, 16, 16, 8, 8, 4, 4, 2, 2, 1, 1]
    assert list(_read(storage, files, "errors")["X"]) == [37]


def test_files_that_cannot_be_read_are_error_rows_and_never_reach_the_model(storage: Storage) -> None:
    seen: list[int] = []

    def length(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        seen.extend(len(d) for d in df["doc"])
        return pd.DataFrame({"LENGTH": [len(d) for d in df["doc"]]})

    fn = ModelFunction("predict", FILE_SIG, length, "FUNCTION", False)
    files_on = StageFiles({("DB", "S", "DOCS"): MountedStage(storage, "stages/DB/S/DOCS")})
    cfg = _cfg(
        storage,
        "in/docs.parquet",
        60,
        feature_columns={"doc": "DOC"},
        column_handling={"DOC": {"input_format": "full_stage_path", "convert_to": "raw_bytes"}},
        files=files_on,
        prefetch_rows=32,
    )
    pipeline = ShardPipeline(cfg)
    files = pipeline.run(fn, lambda rows: None)
    good = [i for i in range(60) if i not in (7, 40)]
    out = _read(storage, files, "data")
    assert list(out.columns) == ["ID", "DOC", "LENGTH"]
    assert list(out["LENGTH"]) == good and seen == good
    assert list(out["DOC"]) == [f"@DB.S.DOCS/d/{i:02d}.txt" for i in good]  # the path, not the bytes
    errors = _read(storage, files, "errors")
    assert errors.to_dict(orient="list") == {
        "ID": [7, 40],
        "DOC": ["@DB.S.DOCS/d/07.txt", "@DB.S.DOCS/d/40.txt"],
        "ERROR_CODE": ["FILE_NOT_FOUND", "FILE_NOT_FOUND"],
        "ERROR_MESSAGE": [
            "File @DB.S.DOCS/d/07.txt does not exist.",
            "File @DB.S.DOCS/d/40.txt does not exist.",
        ],
    }
    assert pipeline.rows_failed == 2
    assert pipeline.prefetcher is not None and 16 < pipeline.prefetcher.peak_rows <= 32


def test_a_model_that_fails_on_every_row_fails_the_shard_with_its_own_error(storage: Storage) -> None:
    def broken(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        raise ZeroDivisionError("boom")

    cfg = _cfg(storage, "in/x.parquet", 100)
    with pytest.raises(ZeroDivisionError, match="boom"):
        run_pipeline(ModelFunction("predict", SIG, broken, "FUNCTION", False), cfg, lambda _: None)


def test_fail_fast_raises_the_first_failure(storage: Storage) -> None:
    picky = Picky()
    cfg = _cfg(storage, "in/x.parquet", 100, fail_fast=True)
    with pytest.raises(ValueError, match="cannot take 7"):
        run_pipeline(ModelFunction("predict", SIG, picky, "FUNCTION", False), cfg, lambda _: None)
    assert picky.calls == 1  # no isolation

    fn = ModelFunction(
        "predict", FILE_SIG, lambda df, p: pd.DataFrame({"LENGTH": [0] * len(df)}), "FUNCTION", False
    )
    cfg = _cfg(
        storage,
        "in/docs.parquet",
        60,
        feature_columns={"doc": "DOC"},
        column_handling={"DOC": {"input_format": "full_stage_path", "convert_to": "base64"}},
        files=StageFiles({("DB", "S", "DOCS"): MountedStage(storage, "stages/DB/S/DOCS")}),
        fail_fast=True,
    )
    with pytest.raises(RowError) as exc:
        run_pipeline(fn, cfg, lambda _: None)
    assert str(exc.value) == "FILE_NOT_FOUND: File @DB.S.DOCS/d/07.txt does not exist."


def test_more_failed_rows_than_allowed_stop_the_shard(storage: Storage) -> None:
    cfg = _cfg(storage, "in/x.parquet", 100, max_failed_rows=3)
    with pytest.raises(TooManyFailedRows) as exc:
        run_pipeline(ModelFunction("predict", SIG, Picky(), "FUNCTION", False), cfg, lambda _: None)
    assert str(exc.value) == (
        "4 input rows failed, more than JobSpec.max_failed_rows=3 allows. Last failure: MODEL_ERROR: ValueError: "
        "cannot take 28"
    )
    cfg = _cfg(storage, "in/x.parquet", 100, max_failed_rows=14, output_prefix="out/b")
    files = run_pipeline(ModelFunction("predict", SIG, Picky(), "FUNCTION", False), cfg, lambda _: None)
    assert sum(f.rows for f in files if f.kind == "errors") == 14


def test_a_partition_the_function_fails_on_is_an_error_as_a_whole(storage: Storage) -> None:
    sig = ModelSignature([FeatureSpec("x", DataType.INT64)], [FeatureSpec("total", DataType.INT64)])

    def total(df: pd.DataFrame, params: dict[str, object]) -> pd.DataFrame:
        if (df["x"] == 55).any():
            raise KeyError("55")
        return pd.DataFrame({"total": [int(df["x"].sum())]})

    with storage.open_output_stream("in/g.parquet") as sink:
        xs = pa.array(range(100), pa.int64())
        pq.write_table(pa.table({"X": xs, "G": pa.compute.cast(pa.compute.divide(xs, 10), pa.int64())}), sink)
    cfg = _cfg(storage, "in/g.parquet", 100, partition_column="G")
    pipeline = ShardPipeline(cfg)
    files = pipeline.run(ModelFunction("predict", sig, total, "TABLE_FUNCTION", True), lambda rows: None)
    out = _read(storage, files, "data").sort_values("G")
    assert list(out["G"]) == [0, 1, 2, 3, 4, 6, 7, 8, 9]
    assert list(out["total"]) == [sum(range(10 * g, 10 * g + 10)) for g in out["G"]]
    errors = _read(storage, files, "errors")
    assert sorted(errors["X"]) == list(range(50, 60))
    assert set(errors["ERROR_MESSAGE"]) == {"KeyError: '55'"}
    assert pipeline.rows_failed == 10
