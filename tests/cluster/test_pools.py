"""Compute pools on the cluster stack: workers register per pool, jobs wait for one or fail fast."""

from __future__ import annotations

import os
import socket
import time
import uuid

import httpx
import pandas as pd
import pytest

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from tests.e2e.models import Doubler
from tests.services import Cluster


def test_a_job_waits_for_a_worker_of_its_pool_then_runs(cluster: Cluster) -> None:
    assert cluster.server is not None
    session = cluster.session()
    pool = f"POOL_{uuid.uuid4().hex[:6].upper()}"
    session.sql(f"CREATE DATABASE P_{uuid.uuid4().hex[:8].upper()}").collect()
    session.sql("CREATE STAGE DATA").collect()
    session.sql(f"CREATE COMPUTE POOL {pool} MIN_NODES=1 MAX_NODES=2 INSTANCE_FAMILY=CPU_X64_XS").collect()
    mv = Registry(session).log_model(Doubler(), model_name="D", sample_input_data=pd.DataFrame({"X": [1.0]}))
    job = mv.run_batch(
        pd.DataFrame({"X": [1.0, 2.0, 3.0]}),
        compute_pool=pool,
        output_spec=OutputSpec(stage_location="@DATA/o/"),
    )
    waiting = (
        f"Waiting for a worker: no live worker serves compute pool {pool}. Start one with "
        f"`runbatch worker --pools {pool}`."
    )
    time.sleep(1)
    assert (job.status, job.info.message) == ("PENDING", waiting)
    url = f"{cluster.server.url}/api/v1/compute-pools/{pool}"
    idle = httpx.get(url, headers=cluster.server.auth).json()
    assert (idle["state"], idle["workers"], idle["instance_family"]) == ("IDLE", [], "CPU_X64_XS")

    worker = cluster.add_worker(pools=pool)
    try:
        assert job.wait(60) == "DONE", job.get_logs()
        assert job.info.message == ""
        active = httpx.get(url, headers=cluster.server.auth).json()
        (shown,) = active["workers"]
        assert active["state"] == "ACTIVE"
        assert (shown["name"], shown["host"], shown["pools"]) == (worker.name, socket.gethostname(), [pool])
        assert (shown["cpus"], shown["slots"], shown["gpus"], shown["live"]) == (os.cpu_count(), 2, 0, True)
        assert shown["memory_bytes"] > 0
    finally:
        worker.stop()
    out = session.read.parquet("@DATA/o/").to_pandas().sort_values("X")
    assert out.Y.tolist() == [2.0, 4.0, 6.0]


def test_requests_no_worker_can_satisfy_fail_fast(cluster: Cluster) -> None:
    session = cluster.session()
    session.sql(f"CREATE DATABASE R_{uuid.uuid4().hex[:8].upper()}").collect()
    session.sql("CREATE STAGE DATA").collect()
    mv = Registry(session).log_model(Doubler(), model_name="D", sample_input_data=pd.DataFrame({"X": [1.0]}))
    with pytest.raises(ValueError) as exc:
        mv.run_batch(
            pd.DataFrame({"X": [1.0]}),
            compute_pool="SYSTEM_COMPUTE_POOL_CPU",
            output_spec=OutputSpec(stage_location="@DATA/o/"),
            job_spec=JobSpec(cpu_requests="4096", memory_requests="1Gi"),
        )
    message = str(exc.value)
    assert message.startswith(
        "No worker of compute pool SYSTEM_COMPUTE_POOL_CPU can run this job: each shard requests cpu=4096, "
        "memory=1.0GiB, gpu=0, and the largest live worker ("
    )
    assert message.endswith("Lower the requests in JobSpec or add a bigger worker to the pool.")
    assert [r["name"] for r in session.sql("LIST @DATA").collect()] == []  # nothing was started or written
