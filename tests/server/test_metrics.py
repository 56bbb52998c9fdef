"""``/metrics`` and JSON logs of a real `runbatch server` of this module's own, after a real job.

The server is this module's alone, so every count is exact: one job ran on it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families

from runbatch.ml.jobs import MLJob
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from server.metrics import SHARD_DURATION_BUCKETS, ServerMetrics
from tests.e2e.models import Doubler
from tests.server.test_api import assert_error_body
from tests.services import ServerProcess

POOL = "SYSTEM_COMPUTE_POOL_CPU"
STATUSES = ["PENDING", "RUNNING", "FAILED", "DONE", "CANCELLING", "CANCELLED", "INTERNAL_ERROR", "DELETED"]
ROWS = 7


class _InfoServer(ServerProcess):
    """A `runbatch server` logging at INFO (ServerProcess pins WARNING)."""

    def start(self) -> None:
        self.env["RUNBATCH_LOG_LEVEL"] = "INFO"
        super().start()


@pytest.fixture(scope="module")
def ops_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = _InfoServer(
        tmp_path_factory.mktemp("ops-server"), env={"RUNBATCH_LOG_FORMAT": "json", "RUNBATCH_SLOTS": "2"}
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def done_job(ops_server: ServerProcess) -> MLJob[None]:
    """One job of ROWS rows in two shards, run to DONE."""
    session: Session = ops_server.session()
    session.sql("CREATE DATABASE OPS").collect()
    session.sql("CREATE STAGE DATA").collect()
    mv = Registry(session).log_model(
        Doubler(), model_name="DOUBLER", sample_input_data=pd.DataFrame({"X": [1.0]})
    )
    job = mv.run_batch(
        session.create_dataframe([(float(i),) for i in range(ROWS)], schema=["X"]),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/out/"),
        job_spec=JobSpec(job_name="METRICS_JOB", replicas=2),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    return job


def _scrape(server: ServerProcess) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{server.url}/metrics", headers=server.auth, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_metrics_after_a_job(ops_server: ServerProcess, done_job: MLJob[None]) -> None:
    samples = _scrape(ops_server)
    jobs = {labels[0][1]: value for (name, labels), value in samples.items() if name == "runbatch_jobs"}
    assert jobs == {status: (1.0 if status == "DONE" else 0.0) for status in STATUSES}

    pool = (("compute_pool", POOL),)
    assert samples[("runbatch_rows_processed_total", pool)] == ROWS
    assert samples[("runbatch_rows_failed_total", pool)] == 0

    done = (("compute_pool", POOL), ("outcome", "done"))
    assert samples[("runbatch_shard_duration_seconds_count", done)] == 2
    assert 0 < samples[("runbatch_shard_duration_seconds_sum", done)] < 120
    assert samples[("runbatch_shard_duration_seconds_bucket", tuple(sorted((*done, ("le", "+Inf")))))] == 2
    assert {labels for name, labels in samples if name == "runbatch_shard_duration_seconds_count"} == {done}
    buckets = sorted(
        float(dict(labels)["le"])
        for name, labels in samples
        if name == "runbatch_shard_duration_seconds_bucket"
    )
    assert buckets == sorted(SHARD_DURATION_BUCKETS)

    pools = sorted(
        p["name"] for p in httpx.get(f"{ops_server.url}/api/v1/compute-pools", headers=ops_server.auth).json()
    )
    assert pools == ["SYSTEM_COMPUTE_POOL_CPU", "SYSTEM_COMPUTE_POOL_GPU"]
    for name in pools:
        labels = (("compute_pool", name),)
        # The embedded worker serves every pool, with RUNBATCH_SLOTS=2; its one queue is empty.
        assert samples[("runbatch_workers", labels)] == 1
        assert samples[("runbatch_worker_slots", labels)] == 2
        assert samples[("runbatch_queue_messages", labels)] == 0
        for state in ("PENDING", "RUNNING"):
            assert samples[("runbatch_shards", (("compute_pool", name), ("state", state)))] == 0


def test_metrics_need_a_token(ops_server: ServerProcess) -> None:
    message = assert_error_body(httpx.get(f"{ops_server.url}/metrics"), 401, "unauthenticated")
    assert message.startswith("Missing bearer token")
    assert_error_body(
        httpx.get(f"{ops_server.url}/metrics", headers={"Authorization": "Bearer rbt_nope"}),
        401,
        "unauthenticated",
    )


def test_server_logs_are_json_lines_with_job_and_shard_ids(
    ops_server: ServerProcess, done_job: MLJob[None]
) -> None:
    lines = [line for line in Path(ops_server.log_path).read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line of output is one JSON object
    assert all(isinstance(e, dict) and {"timestamp", "level", "logger", "message"} <= set(e) for e in entries)
    assert ops_server.token not in "\n".join(lines)
    job_id = str(done_job.info.uuid)
    shards = {
        s["index"]: s["id"]
        for s in httpx.get(
            f"{ops_server.url}/api/v1/databases/OPS/schemas/PUBLIC/jobs/METRICS_JOB/shards",
            headers=ops_server.auth,
        ).json()
    }

    finalized = [e for e in entries if e["logger"] == "runbatch.server.finalize" and e.get("job") == job_id]
    assert [(e["level"], e["message"], e["job_name"]) for e in finalized] == [
        ("INFO", "job METRICS_JOB finalized: DONE", "METRICS_JOB")
    ]
    started = sorted(
        (e["shard_index"], e["shard"], e["attempt"], e["message"])
        for e in entries
        if e["logger"] == "runbatch.worker" and e.get("job") == job_id and e["message"].startswith("running")
    )
    assert started == [
        (index, shards[index], 1, f"running shard {index} of job METRICS_JOB, attempt 1") for index in (0, 1)
    ]
    exited = [e for e in entries if e.get("job") == job_id and "exited with code 0" in e["message"]]
    assert sorted(e["shard"] for e in exited) == sorted(shards.values())
    # Lines of uvicorn and of the CLI are JSON too.
    assert any(e["logger"] == "uvicorn.error" for e in entries)
    assert any(e["message"].startswith("admin token: ") for e in entries)


def test_each_control_plane_has_its_own_registry() -> None:
    # A process-wide registry would refuse the second set of series (duplicated timeseries).
    first, second = ServerMetrics(), ServerMetrics()
    first.rows_processed.labels(compute_pool=POOL).inc(3)
    assert first.registry.get_sample_value("runbatch_rows_processed_total", {"compute_pool": POOL}) == 3
    assert second.registry.get_sample_value("runbatch_rows_processed_total", {"compute_pool": POOL}) is None
