"""Batch jobs through Celery + Docker + S3 + Postgres: one runtime container per shard."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from runbatch.ml.model import custom_model
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from tests.e2e.models import Sleeper
from tests.services import Cluster

# The first test of a run may wait for the runtime image to be built (a few minutes on a new machine).
pytestmark = pytest.mark.timeout(900)

POOL = "SYSTEM_COMPUTE_POOL_CPU"


class NeedsIniconfig(custom_model.CustomModel):
    """Runs only where its logged requirement is installed: proves the per-model image."""

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        import iniconfig  # not in the runtime image; the model's environment image adds it

        return pd.DataFrame({"Y": X["X"] + len(iniconfig.__name__)})


def _containers(client: Any, job: str) -> list[Any]:
    return list(client.containers.list(all=True, filters={"label": f"org.runbatch.job={job}"}))


def _db(cluster: Cluster) -> Any:
    session = cluster.session()
    name = f"D_{int(time.time() * 1000) % 10**9}"
    session.sql(f"CREATE DATABASE {name}").collect()
    session.sql("CREATE STAGE DATA").collect()
    return session


def test_a_job_runs_in_containers_and_leaves_none(docker_cluster: Cluster, docker_client: Any) -> None:
    session = _db(docker_cluster)
    rng = np.random.default_rng(0)
    data = pd.DataFrame(rng.normal(size=(3_000, 3)), columns=["A", "B", "C"])
    model = LogisticRegression().fit(data, data.A > 0)
    mv = Registry(session).log_model(model, model_name="CLF", sample_input_data=data.head(10))
    job = mv.run_batch(
        session.create_dataframe(data),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/out/"),
        job_spec=JobSpec(function_name="predict_proba", replicas=2, cpu_requests="1", memory_requests="2Gi"),
    )
    assert job.wait(300) == "DONE", job.get_logs()
    out = session.read.option("pattern", ".*\\.parquet").parquet("@DATA/out/").to_pandas()
    assert len(out) == 3_000
    merged = out.merge(data.reset_index(), on=["A", "B", "C"])
    np.testing.assert_allclose(
        merged[["output_feature_0", "output_feature_1"]].to_numpy(),
        model.predict_proba(merged[["A", "B", "C"]]),
        rtol=1e-12,
    )
    logs = job.get_logs(instance_id=1)
    assert "Starting inference." in logs and "Inference finished." in logs
    assert _containers(docker_client, job.name) == []


def test_cancel_kills_the_containers(docker_cluster: Cluster, docker_client: Any) -> None:
    session = _db(docker_cluster)
    mv = Registry(session).log_model(
        Sleeper(), model_name="SLEEPER", sample_input_data=pd.DataFrame({"X": [1.0]})
    )
    job = mv.run_batch(
        session.create_dataframe(pd.DataFrame({"X": np.arange(2_000, dtype=float)})),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/slow/"),
        job_spec=JobSpec(replicas=2, max_batch_rows=10),
    )
    deadline = time.monotonic() + 240
    while "Starting inference." not in job.get_logs(instance_id=0) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(_containers(docker_client, job.name)) >= 1
    job.cancel()
    assert job.wait(120) == "CANCELLED"
    deadline = time.monotonic() + 60
    while _containers(docker_client, job.name) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _containers(docker_client, job.name) == []


def test_out_of_memory_fails_with_the_limit_named(docker_cluster: Cluster) -> None:
    session = _db(docker_cluster)
    mv = Registry(session).log_model(
        Sleeper(), model_name="SLEEPER", sample_input_data=pd.DataFrame({"X": [1.0]})
    )
    job = mv.run_batch(
        session.create_dataframe(pd.DataFrame({"X": [1.0, 2.0]})),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/oom/"),
        job_spec=JobSpec(memory_requests="24Mi"),
    )
    assert job.wait(240) == "FAILED"
    # Not retried: the same limit would kill the next attempt too.
    assert job.info.message == (
        "Shard 0 failed (attempt 1/2): The runtime ran out of memory: Docker killed its container at the memory "
        "limit of 24Mi (JobSpec.memory_requests), exit code 137. Raise memory_requests or lower max_batch_rows."
    )


def test_a_model_s_requirements_get_their_own_image(docker_cluster: Cluster, docker_client: Any) -> None:
    session = _db(docker_cluster)
    mv = Registry(session).log_model(
        NeedsIniconfig(),
        model_name="NEEDS",
        sample_input_data=pd.DataFrame({"X": [1.0]}),
        pip_requirements=["iniconfig==2.0.0"],
    )
    job = mv.run_batch(
        session.create_dataframe(pd.DataFrame({"X": [1.0, 2.0]})),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/env/"),
    )
    assert job.wait(600) == "DONE", job.get_logs()
    out = session.read.parquet("@DATA/env/").to_pandas()
    assert out.sort_values("X")["Y"].tolist() == [10.0, 11.0]
    assert [t for i in docker_client.images.list(name="runbatch-model-env") for t in i.tags]
