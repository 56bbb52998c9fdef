"""run_batch over a DataFrame built from tables or stage files: the query runs on the control plane
and its rows never pass through the client."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.errors import InvalidArgumentError
from runbatch.ml.jobs import list_jobs
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from runbatch.snowpark import functions as F
from runbatch.snowpark.dataframe import DataFrame
from tests.e2e.models import Doubler

POOL = "SYSTEM_COMPUTE_POOL_CPU"


@contextlib.contextmanager
def rows_stay_on_the_server() -> Iterator[None]:
    """Fail if the SDK materializes a DataFrame's rows meanwhile (the pushdown must not)."""

    def refuse(self: DataFrame) -> None:
        raise AssertionError("run_batch pulled the DataFrame's rows through the client")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DataFrame, "_arrow", refuse)
        patch.setattr(DataFrame, "to_pandas_batches", refuse)
        yield


def _doubler(session: Session) -> object:
    return Registry(session).log_model(
        Doubler(), model_name="DOUBLER", sample_input_data=pd.DataFrame({"X": [1.0]})
    )


def test_query_over_a_table_and_stage_files_runs_on_the_control_plane(
    session: Session, fresh_db: str
) -> None:
    mv = _doubler(session)
    n = 200_000
    ids = np.arange(n, dtype=np.int64)
    session.create_dataframe(pd.DataFrame({"ID": ids, "X": ids.astype(float)})).write.save_as_table(
        "FEATURES"
    )
    session.create_dataframe(pd.DataFrame({"ID": [1, 2, 3], "W": [0.5, 1.5, 2.5]})).write.mode(
        "overwrite"
    ).save_as_table("WEIGHTS")
    frame = (
        session.table("FEATURES")
        .filter(F.col("id") % 2 == 0)
        .with_column("X", F.col("x") + 1)
        .select("ID", "X")
    )
    before = len(list_jobs(session=session))
    with rows_stay_on_the_server():
        job = mv.run_batch(  # type: ignore[attr-defined]
            frame,
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@DATA/o/"),
            job_spec=JobSpec(replicas=2),
        )
    assert job.wait(120) == "DONE", (session._conn.client.get_job(*job.id.split(".")).message, job.get_logs())
    assert len(list_jobs(session=session)) == before + 1
    out = session.read.parquet("@DATA/o/").to_pandas().sort_values("ID", ignore_index=True)
    assert len(out) == n // 2
    assert out["ID"].tolist() == list(range(0, n, 2))
    assert out["Y"].tolist() == [2.0 * (i + 1) for i in range(0, n, 2)]
    # Joins of tables run the same way.
    joined = (
        session.table("FEATURES")
        .join(session.table("WEIGHTS"), "ID")
        .select("ID", (F.col("X") * F.col("W")).alias("X"))
    )
    job = mv.run_batch(  # type: ignore[attr-defined]
        joined, compute_pool=POOL, output_spec=OutputSpec(stage_location="@DATA/joined/")
    )
    assert job.wait(120) == "DONE", job.get_logs()
    rows = session.read.parquet("@DATA/joined/").sort("ID").to_pandas()
    assert rows.to_dict("list") == {"ID": [1, 2, 3], "X": [0.5, 3.0, 7.5], "Y": [1.0, 6.0, 15.0]}


def test_session_sql_over_stage_files_is_pushed_down(session: Session, fresh_db: str, tmp_path: Path) -> None:
    mv = _doubler(session)
    session.sql("CREATE STAGE OUT").collect()
    pq.write_table(pa.table({"ID": [3, 1, 2], "X": [30.0, 10.0, 20.0]}), tmp_path / "part.parquet")
    session.file.put(str(tmp_path / "part.parquet"), "@DATA/in/")
    with rows_stay_on_the_server():
        job = mv.run_batch(  # type: ignore[attr-defined]
            session.sql("SELECT ID, X FROM @DATA/in/ WHERE X > 10 ORDER BY ID"),
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@OUT/sql/"),
        )
    assert job.wait(120) == "DONE", job.get_logs()
    got = pq.read_table(_download(session, "@OUT/sql/")).to_pandas().sort_values("ID")
    assert got.to_dict("list") == {"ID": [2, 3], "X": [20.0, 30.0], "Y": [40.0, 60.0]}


def _download(session: Session, location: str) -> str:
    import tempfile

    target = tempfile.mkdtemp(prefix="pushdown-")
    session.file.get(location, target, pattern=r".*\.parquet")
    return target


def test_an_empty_query_result_ends_done_with_no_rows(session: Session, fresh_db: str) -> None:
    mv = _doubler(session)
    session.sql("CREATE STAGE OUT").collect()
    session.create_dataframe(pd.DataFrame({"X": [1.0, 2.0]})).write.save_as_table("T")
    job = mv.run_batch(  # type: ignore[attr-defined]
        session.table("T").filter(F.col("X") > 100),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@OUT/empty/"),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    listed = {r["name"].rsplit("/", 1)[-1] for r in session.sql("LS @OUT/empty/").collect()}
    assert "_SUCCESS" in listed


def test_a_query_that_does_not_compile_is_refused_before_a_job_exists(
    session: Session, fresh_db: str
) -> None:
    mv = _doubler(session)
    session.sql("CREATE STAGE OUT").collect()
    session.create_dataframe(pd.DataFrame({"X": [1.0]})).write.save_as_table("T")
    before = len(list_jobs(session=session))
    with pytest.raises(InvalidArgumentError, match="NOPE"):
        mv.run_batch(  # type: ignore[attr-defined]
            session.sql("SELECT NOPE AS X FROM T"),
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@OUT/bad/"),
        )
    assert len(list_jobs(session=session)) == before


def test_a_query_that_fails_at_once_is_refused_with_its_error(session: Session, fresh_db: str) -> None:
    mv = _doubler(session)
    session.sql("CREATE STAGE OUT").collect()
    session.create_dataframe(pd.DataFrame({"S": ["1", "2", "not a number"]})).write.save_as_table("T")
    before = len(list_jobs(session=session))
    with pytest.raises(InvalidArgumentError, match="Could not convert string 'not a number' to DOUBLE"):
        mv.run_batch(  # type: ignore[attr-defined]
            session.sql("SELECT CAST(S AS DOUBLE) AS X FROM T"),
            compute_pool=POOL,
            output_spec=OutputSpec(stage_location="@OUT/failing/"),
        )
    assert len(list_jobs(session=session)) == before


def test_a_query_that_fails_midway_fails_the_job_without_success(session: Session, fresh_db: str) -> None:
    mv = _doubler(session)
    session.sql("CREATE STAGE OUT").collect()
    values = [str(i) for i in range(400_000)]
    values[-1] = "not a number"
    session.create_dataframe(pd.DataFrame({"S": values})).write.save_as_table("T")
    job = mv.run_batch(  # type: ignore[attr-defined]
        session.sql("SELECT CAST(S AS DOUBLE) AS X FROM T"),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@OUT/failing/"),
    )
    assert job.wait(120) == "FAILED"
    record = session._conn.client.get_job(*job.id.split("."))
    assert record.message.startswith("The job's input query failed: ")
    assert "Could not convert string 'not a number' to DOUBLE" in record.message
    assert session.sql("LS @OUT/failing/").collect() == []
