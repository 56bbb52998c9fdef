"""The dashboard's read-only route on a real server: the shards running now, ACCOUNTADMIN's only."""

from __future__ import annotations

import time
import uuid

import httpx
import pandas as pd

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from tests.e2e.models import Sleeper
from tests.services import ServerProcess

POOL = "SYSTEM_COMPUTE_POOL_CPU"
SAMPLE = pd.DataFrame({"X": [1.0]})


def _database(server: ServerProcess) -> str:
    name = f"T_{uuid.uuid4().hex[:10].upper()}"
    session = server.session()
    session.sql(f"CREATE DATABASE {name}").collect()
    session.sql("CREATE STAGE DATA").collect()
    return name


def test_running_shards_lists_the_shards_running_now(server_process: ServerProcess) -> None:
    db = _database(server_process)
    session = server_process.session()
    session.sql(f"USE DATABASE {db}").collect()
    mv = Registry(session).log_model(Sleeper(), model_name="SLOW", sample_input_data=SAMPLE)
    job = mv.run_batch(
        session.create_dataframe(pd.DataFrame({"X": [float(i) for i in range(400)]})),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/slow/"),
        job_spec=JobSpec(replicas=2, max_batch_rows=5),
    )
    url = f"{server_process.url}/api/v1/dashboard/running-shards"
    try:
        deadline = time.monotonic() + 120
        while True:
            mine = [s for s in httpx.get(url, headers=server_process.auth).json() if s["job_id"] == job.id]
            if len(mine) == 2 and all(s["rows_done"] > 0 for s in mine):
                break
            assert time.monotonic() < deadline, job.get_logs()
            time.sleep(0.2)
        assert sorted(s["index"] for s in mine) == [0, 1]
        for shard in mine:
            assert (shard["database_name"], shard["schema_name"], shard["job_name"]) == (
                db,
                "PUBLIC",
                job.name,
            )
            assert (shard["compute_pool"], shard["attempt"], shard["rows_total"]) == (POOL, 1, 200)
            assert shard["worker"]
        in_pool = httpx.get(url, params={"pool": POOL}, headers=server_process.auth).json()
        assert {s["shard_id"] for s in mine} <= {s["shard_id"] for s in in_pool}
        assert httpx.get(url, params={"pool": "NO_SUCH_POOL"}, headers=server_process.auth).json() == []
    finally:
        job.cancel()
    assert job.wait(60) == "CANCELLED"
    remaining = httpx.get(url, headers=server_process.auth).json()
    assert [s for s in remaining if s["job_id"] == job.id] == []


def test_running_shards_are_refused_to_users_who_are_not_admins(server_process: ServerProcess) -> None:
    base = f"{server_process.url}/api/v1"
    name = f"VIEWER_{uuid.uuid4().hex[:6].upper()}"
    created = httpx.post(f"{base}/users", json={"name": name}, headers=server_process.auth)
    assert created.status_code == 201, created.text
    token = httpx.post(f"{base}/tokens", json={"name": "t", "user": name}, headers=server_process.auth)
    assert token.status_code == 201, token.text
    viewer = {"Authorization": f"Bearer {token.json()['secret']}"}
    answer = httpx.get(f"{base}/dashboard/running-shards", headers=viewer)
    assert answer.status_code == 403
    assert answer.json()["error"]["code"] == "permission_denied"
    assert httpx.get(f"{base}/dashboard/running-shards").status_code == 401
