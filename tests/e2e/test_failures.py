"""Cancel, crashes and model errors: the job ends as it should and never writes _SUCCESS."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from runbatch.errors import ConflictError
from runbatch.ml.jobs import MLJob
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Crasher, Raiser, Sleeper

POOL = "SYSTEM_COMPUTE_POOL_CPU"
SAMPLE = pd.DataFrame({"X": [1.0]})


def _runtime_pids(job: MLJob[object], shards: int) -> list[int]:
    """Live runtime processes of a job (each logs its pid when it starts)."""
    pids = []
    for instance in range(shards):
        for pid in re.findall(r"\(pid (\d+)\)", str(job.get_logs(instance_id=instance))):
            if (
                Path(f"/proc/{pid}").exists()
                and b"runbatch.runtime" in Path(f"/proc/{pid}/cmdline").read_bytes()
            ):
                pids.append(int(pid))
    return pids


def _files(session: Session, location: str) -> list[str]:
    return [r["name"].split("/", 1)[1] for r in session.sql(f"LIST {location}").collect()]


def test_cancel_stops_a_running_job(session: Session, fresh_db: str) -> None:
    mv = Registry(session).log_model(Sleeper(), model_name="SLOW", sample_input_data=SAMPLE)
    frame = session.create_dataframe([(float(i),) for i in range(200)], schema=["X"])
    job = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/c/"),
        job_spec=JobSpec(replicas=2, max_batch_rows=5),
    )
    deadline = time.monotonic() + 60
    while job.info.rows_done == 0:
        assert time.monotonic() < deadline, job.get_logs()
        time.sleep(0.1)
    deadline = time.monotonic() + 30
    while len(_runtime_pids(job, 2)) < 2:
        assert time.monotonic() < deadline, job.get_logs()
        time.sleep(0.1)
    job.cancel()
    assert job.wait(60) == "CANCELLED"
    info = job.info
    assert 0 < info.rows_done < 200
    assert info.message == "Job was cancelled."
    assert _files(session, "@DATA/c/") == []  # no _SUCCESS, no partial files, _temporary removed
    deadline = time.monotonic() + 10
    while _runtime_pids(job, 2):
        assert time.monotonic() < deadline, "runtime processes outlived the cancel"
        time.sleep(0.1)


def test_a_crashing_runtime_is_retried_then_fails_the_job(session: Session, fresh_db: str) -> None:
    mv = Registry(session).log_model(Crasher(), model_name="CRASHER", sample_input_data=SAMPLE)
    frame = session.create_dataframe([(float(i),) for i in range(100)], schema=["X"])
    job = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/x/"),
        job_spec=JobSpec(max_batch_rows=10),
    )
    assert job.wait(90) == "FAILED"
    info = job.info
    attempts = int(os.environ["RUNBATCH_MAX_SHARD_ATTEMPTS"])
    assert info.message == (
        f"Shard 0 failed (attempt {attempts}/{attempts}): The runtime exited with code 17. Last output: about to crash"
    )
    logs = job.get_logs(as_list=True)
    assert logs.count("[runbatch] The runtime exited with code 17. Last output: about to crash") == attempts
    assert _files(session, "@DATA/x/") == []


def test_a_model_error_fails_the_job_without_retry(session: Session, fresh_db: str) -> None:
    signature = ModelSignature(
        inputs=[FeatureSpec("X", DataType.DOUBLE)], outputs=[FeatureSpec("Y", DataType.DOUBLE)]
    )
    mv = Registry(session).log_model(Raiser(), model_name="RAISER", signatures={"predict": signature})
    frame = session.create_dataframe([(1.0,), (2.0,)], schema=["X"])
    job = mv.run_batch(frame, compute_pool=POOL, output_spec=OutputSpec(stage_location="@DATA/r/"))
    assert job.wait(60) == "FAILED"
    shards = session._conn.client.job_shards(session._conn.database, "PUBLIC", job.name)
    assert [(s.state, s.attempt) for s in shards] == [("FAILED", 1)]
    assert job.info.message == (
        "Shard 0 failed (attempt 1/2): Inference failed: ValueError: the model refuses this input"
    )
    assert "ValueError: the model refuses this input" in job.get_logs()
    assert _files(session, "@DATA/r/") == []


def test_a_database_with_a_running_job_cannot_be_dropped(session: Session, fresh_db: str) -> None:
    mv = Registry(session).log_model(Sleeper(), model_name="SLOW", sample_input_data=SAMPLE)
    frame = session.create_dataframe([(float(i),) for i in range(40)], schema=["X"])
    job = mv.run_batch(
        frame,
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/d/"),
        job_spec=JobSpec(max_batch_rows=5, job_name="SLOW_JOB"),
    )
    with pytest.raises(ConflictError) as exc:
        session.sql(f"DROP DATABASE {fresh_db}").collect()
    assert f"Database {fresh_db} has 1 job(s) still running (SLOW_JOB); cancel them" in str(exc.value)
    job.cancel()
    assert job.wait(60) == "CANCELLED"
    session.sql(f"DROP DATABASE {fresh_db}").collect()
    with pytest.raises(RuntimeError, match="Failed to cancel job"):
        job.cancel()  # its database is gone, as Snowflake's MLJob.cancel reports it
