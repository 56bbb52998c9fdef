"""partition_column and @partitioned_api: the four cases of Snowflake's batch inference, and its errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from runbatch.ml.model import ModelVersion
from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Doubler, EchoPartition, PartitionStats, RowwiseTable

POOL = "SYSTEM_COMPUTE_POOL_CPU"
TABLE = {"function_type": "TABLE_FUNCTION"}


def _data(rows: int = 3_000) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(
        {
            "ID": np.arange(rows, dtype=np.int64),
            "P": rng.choice(["a", "b", "c", "d", "e", "f", "g"], size=rows),
            "X": rng.normal(size=rows).round(3),
        }
    )


def _log(session: Session, model: object, name: str, sample: pd.DataFrame) -> ModelVersion:
    return Registry(session).log_model(model, model_name=name, sample_input_data=sample, options=TABLE)


def _run(
    mv: ModelVersion, session: Session, data: pd.DataFrame, out: str, **input_spec: object
) -> pd.DataFrame:
    job = mv.run_batch(
        session.create_dataframe(data),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location=f"@DATA/{out}/"),
        input_spec=InputSpec(**input_spec),  # type: ignore[arg-type]
        job_spec=JobSpec(replicas=2, max_batch_rows=250),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    return session.read.option("pattern", ".*\\.parquet").parquet(f"@DATA/{out}/").to_pandas()


def _expected_stats(data: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for key, part in data.groupby("P"):
        rows += [(key, "count", float(len(part))), (key, "sum", float(part["X"].sum()))]
    return pd.DataFrame(rows, columns=["P", "STAT", "VALUE"])


def test_partitioned_function_gets_each_partition_whole(session: Session, fresh_db: str) -> None:
    data = _data()
    mv = _log(session, PartitionStats(), "STATS", data[["P", "X"]].head(5))
    assert mv.show_functions()[0]["is_partitioned"] is True
    out = _run(mv, session, data, "by_p", partition_column="p")
    # The partition column first, then the model's outputs; no other input column passes through.
    assert list(out.columns) == ["P", "STAT", "VALUE"]
    got = out.sort_values(["P", "STAT"]).reset_index(drop=True)
    expected = _expected_stats(data)
    pd.testing.assert_frame_equal(got[["P", "STAT"]], expected[["P", "STAT"]])
    np.testing.assert_allclose(got["VALUE"], expected["VALUE"], rtol=1e-12)
    job_rows = mv.run(data, function_name="predict", partition_column="P")
    local = job_rows.sort_values(["P", "STAT"]).reset_index(drop=True)
    assert list(job_rows.columns) == ["STAT", "VALUE", "P"]
    pd.testing.assert_frame_equal(local[["P", "STAT", "VALUE"]], got, check_dtype=False)


def test_partitioned_function_without_a_column_sees_one_partition(session: Session, fresh_db: str) -> None:
    data = _data(1_000)
    mv = _log(session, PartitionStats(), "STATS", data[["P", "X"]].head(5))
    out = _run(mv, session, data, "whole")
    assert list(out.columns) == ["STAT", "VALUE"]
    assert out.sort_values("STAT")["VALUE"].tolist() == pytest.approx([1_000.0, data["X"].sum()], rel=1e-12)


def test_row_wise_table_function_batches_hold_one_partition(session: Session, fresh_db: str) -> None:
    data = _data()
    mv = _log(session, RowwiseTable(), "ROWWISE", data[["P", "X"]].head(5))
    out = _run(mv, session, data, "rowwise", partition_column="P").sort_values("ID").reset_index(drop=True)
    assert list(out.columns) == ["ID", "P", "X", "Y", "PARTS_IN_CALL"]
    pd.testing.assert_frame_equal(out[["ID", "P", "X"]], data)
    np.testing.assert_array_equal(out["Y"].to_numpy(), data["X"].to_numpy() * 2.0)
    assert set(out["PARTS_IN_CALL"]) == {1}
    # mv.run keeps rows where they were, whatever the caller's index.
    backwards = data.iloc[::-1]
    local = mv.run(backwards, function_name="predict", partition_column="P")
    np.testing.assert_array_equal(local["Y"].to_numpy(), backwards["X"].to_numpy() * 2.0)
    # Without a partition column, batches mix partitions and rows stay 1:1.
    mixed = _run(mv, session, data, "mixed").sort_values("ID").reset_index(drop=True)
    assert len(mixed) == 3_000 and mixed["PARTS_IN_CALL"].max() > 1


def _refusal(mv: ModelVersion, frame: object, out: str, column: str) -> str:
    with pytest.raises(ValueError) as exc:
        mv.run_batch(
            frame,  # type: ignore[arg-type]
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location=f"@DATA/{out}/"),
            input_spec=InputSpec(partition_column=column),
        )
    return str(exc.value)


def test_partitioning_errors(session: Session, fresh_db: str) -> None:
    data = _data(20)
    frame = session.create_dataframe(data)
    doubler = Registry(session).log_model(
        Doubler(), model_name="DOUBLER", sample_input_data=pd.DataFrame({"X": [1.0]})
    )
    assert _refusal(doubler, frame, "e1", "P") == (
        "partition_column is not supported for FUNCTION type methods in batch inference jobs. Only TABLE_FUNCTION "
        "type methods support partitioning."
    )
    echo = _log(session, EchoPartition(), "ECHO", data[["P", "X"]].head(3))
    assert _refusal(echo, frame, "e2", "p") == (
        "Partitioned model output includes the partition column(s) ['P']. Batch inference automatically appends the "
        "partition column to the output of partitioned models; please remove ['P'] from the model output and "
        "re-register the model."
    )
    stats = _log(session, PartitionStats(), "STATS", data[["P", "X"]].head(3))
    assert _refusal(stats, frame, "e3", "REGION") == (
        "partition_column 'REGION' is not a column of the input; the input has columns ['ID', 'P', 'X']. Name one "
        "of them in InputSpec(partition_column=...)."
    )
    assert session.sql("LIST @DATA").collect() == []
