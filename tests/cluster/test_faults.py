"""Faults on the cluster stack: dead and frozen workers, a Redis restart, Postgres going away.

Each job writes one output row per input row; every test checks the committed output holds
exactly the input's IDs, once each (nothing lost, nothing duplicated by a retried shard).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest

from runbatch.ml.jobs import MLJob
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import SlowDoubler
from tests.services import Cluster, MotoServer, WorkerProcess, running_cluster

POOL = "SYSTEM_COMPUTE_POOL_CPU"
ROWS = 400


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer) -> Iterator[Cluster]:
    """A cluster of its own (the faults below break it), reaching Postgres through a proxy that can cut it."""
    with running_cluster(tmp_path_factory.mktemp("faulty"), moto_server, postgres_via_proxy=True) as cluster:
        yield cluster


@pytest.fixture
def sdk(faulty: Cluster) -> Iterator[Session]:
    """Two live workers, and a database of the test's own."""
    for worker in [w for w in faulty.workers if w.proc.poll() is not None]:
        faulty.workers.remove(worker)
    while len(faulty.workers) < 2:
        faulty.workers.append(faulty.add_worker())
    session = faulty.session()
    session.sql(f"CREATE DATABASE F_{uuid.uuid4().hex[:8].upper()}").collect()
    session.sql("CREATE STAGE DATA").collect()
    yield session


def _start(session: Session, location: str, replicas: int = 4) -> MLJob[object]:
    mv = Registry(session).log_model(
        SlowDoubler(), model_name="SLOW", sample_input_data=pd.DataFrame({"ID": [0], "X": [1.0]})
    )
    data = pd.DataFrame({"ID": range(ROWS), "X": [float(i) for i in range(ROWS)]})
    return mv.run_batch(
        session.create_dataframe(data),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location=location),
        job_spec=JobSpec(replicas=replicas, max_batch_rows=10),
    )


def _shards(cluster: Cluster, job: MLJob[object]) -> list[dict[str, object]]:
    assert cluster.server is not None
    database, schema, name = job.id.split(".")
    response = httpx.get(
        f"{cluster.server.url}/api/v1/databases/{database}/schemas/{schema}/jobs/{name}/shards",
        headers=cluster.server.auth,
        timeout=10,
    )
    response.raise_for_status()
    shards: list[dict[str, object]] = response.json()
    return shards


def _busy(cluster: Cluster, job: MLJob[object], worker: WorkerProcess) -> bool:
    """The worker runs one of the job's shards, which has written some rows already."""
    return any(
        s["worker"] == worker.name and s["state"] == "RUNNING" and int(str(s["rows_done"])) > 0
        for s in _shards(cluster, job)
    )


def _process_tree(root: int) -> list[int]:
    """``root`` and its descendants (a worker and its runtime processes)."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(stat.parent.name)] = int(fields[1])
    tree = [root]
    for pid in tree:
        tree += [child for child, parent in parents.items() if parent == pid]
    return tree


def _wait_for(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def _assert_exact_output(session: Session, job: MLJob[object], location: str) -> None:
    assert job.wait(120) == "DONE", job.get_logs()
    out = session.read.parquet(location).to_pandas()
    assert sorted(out.ID.tolist()) == list(range(ROWS))
    assert (out.Y == out.X * 2).all()
    assert job.info.rows_done == ROWS


def test_a_worker_killed_mid_shard_loses_nothing(faulty: Cluster, sdk: Session) -> None:
    job = _start(sdk, "@DATA/killed/")
    victim = faulty.workers[0]
    _wait_for(lambda: _busy(faulty, job, victim), "the first worker to start a shard")
    victim.kill()
    _assert_exact_output(sdk, job, "@DATA/killed/")
    shards = _shards(faulty, job)
    retried = [s for s in shards if int(str(s["attempt"])) > 1]
    assert retried and all(s["worker"] != victim.name for s in retried)


def test_a_frozen_worker_s_shard_is_retried_elsewhere(faulty: Cluster, sdk: Session) -> None:
    job = _start(sdk, "@DATA/frozen/")
    victim = faulty.workers[0]
    _wait_for(lambda: _busy(faulty, job, victim), "the first worker to start a shard")
    # Freeze the worker and its runtimes: every heartbeat stops, nothing exits.
    frozen = _process_tree(victim.proc.pid)
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        _assert_exact_output(sdk, job, "@DATA/frozen/")
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    retried = [s for s in _shards(faulty, job) if int(str(s["attempt"])) > 1]
    assert retried and all(s["worker"] != victim.name for s in retried)
    # The thawed runtime's late report is refused: the output above stays exact.
    time.sleep(3)
    out = sdk.read.parquet("@DATA/frozen/").to_pandas()
    assert sorted(out.ID.tolist()) == list(range(ROWS))


def test_a_redis_restart_mid_job_does_not_stop_it(faulty: Cluster, sdk: Session) -> None:
    assert faulty.redis is not None
    job = _start(sdk, "@DATA/redis/", replicas=8)  # 4 slots in all: 4 shards wait in the queue
    _wait_for(lambda: job.info.rows_done > 0, "the job to start")
    assert any(s["state"] == "PENDING" for s in _shards(faulty, job))  # their messages are in Redis
    faulty.redis.restart()  # no persistence: the queued shard messages are gone
    _assert_exact_output(sdk, job, "@DATA/redis/")


def test_postgres_going_away_answers_503_then_recovers(faulty: Cluster, sdk: Session) -> None:
    assert faulty.proxy is not None and faulty.server is not None
    server = faulty.server
    faulty.proxy.cut()
    try:
        response = httpx.get(f"{server.url}/api/v1/jobs", headers=server.auth, timeout=30)
        assert response.status_code == 503
        assert response.json() == {
            "error": {
                "code": "unavailable",
                "message": "The metadata database is unavailable; retry shortly.",
            }
        }
        health = httpx.get(f"{server.url}/api/v1/health", timeout=30)
        assert health.status_code == 503
    finally:
        faulty.proxy.restore()
    assert httpx.get(f"{server.url}/api/v1/health", timeout=30).status_code == 200
    assert httpx.get(f"{server.url}/api/v1/jobs", headers=server.auth, timeout=30).status_code == 200
    job = _start(sdk, "@DATA/after/")  # and the whole path works again
    _assert_exact_output(sdk, job, "@DATA/after/")


def test_a_killed_workers_slots_stop_counting(faulty: Cluster, sdk: Session) -> None:
    assert faulty.server is not None
    victim = faulty.workers[0]
    victim.kill()
    url = f"{faulty.server.url}/api/v1/compute-pools/{POOL}"
    live = lambda: [w["name"] for w in httpx.get(url, headers=faulty.server.auth).json()["workers"]]  # noqa: E731
    _wait_for(lambda: victim.name not in live(), "the dead worker to drop out of its pool", timeout=30)
    assert faulty.workers[1].name in live()
