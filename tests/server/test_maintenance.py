"""The reaper and finalization on a real metadata database and storage (no workers attached)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from migrations import upgrade_to_head
from server.app import build_control_plane
from server.control_plane import ControlPlane
from server.db.tables import JobRow, ShardRow, utcnow
from server.jobs.finalize import finalize
from server.jobs.states import JobPhase, JobStatus, ShardState
from server.maintenance import Maintenance
from server.resources.service import create_database
from server.settings import ServerSettings


class RecordingDispatcher:
    def __init__(self) -> None:
        self.sent: list[tuple[str, list[uuid.UUID]]] = []

    def dispatch(self, pool: str, shard_ids: list[uuid.UUID]) -> None:
        self.sent.append((pool, shard_ids))


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[ControlPlane]:
    settings = ServerSettings(home=tmp_path, heartbeat_timeout_s=30, max_shard_attempts=2)
    control_plane = build_control_plane(settings, RecordingDispatcher())
    upgrade_to_head(control_plane.engine)
    yield control_plane
    control_plane.engine.dispose()


def _job(
    cp: ControlPlane, *, shard_state: ShardState, attempt: int, heartbeat_age_s: float, files: int = 0
) -> uuid.UUID:
    out = "stages/D/PUBLIC/S/out"
    with cp.sessionmaker() as session:
        db, _ = create_database(session, f"D{uuid.uuid4().hex[:6]}", owner="t")
        job = JobRow(
            schema_id=db.schemas[0].id,
            name="J",
            status=JobStatus.RUNNING,
            phase=JobPhase.RUNNING,
            owner="t",
            compute_pool="SYSTEM_COMPUTE_POOL_CPU",
            model_name="M",
            version_name="V",
            function_name="predict",
            spec={"output_key": out, "temporary_key": f"{out}/_temporary", "request": {}},
            output_location="@D.PUBLIC.S/out/",
            input_location="@D.PUBLIC.S/in/",
            replicas=1,
            rows_total=10 * files,
        )
        output_files = []
        for i in range(files):
            key = f"{out}/_temporary/shards/00000/{attempt}/part-00000-{i:05d}.parquet"
            cp.storage.write_bytes(key, b"data")
            output_files.append({"key": key, "rows": 10, "bytes": 4})
        job.shards.append(
            ShardRow(
                index=0,
                state=shard_state,
                attempt=attempt,
                max_attempts=2,
                slices=[],
                rows_total=10 * files,
                rows_done=10 * files,
                heartbeat_at=utcnow() - timedelta(seconds=heartbeat_age_s),
                output_files=output_files,
            )
        )
        session.add(job)
        session.commit()
        return job.id


def _state(cp: ControlPlane, job_id: uuid.UUID) -> tuple[str, str, str, int, str]:
    with cp.sessionmaker() as session:
        job = session.get(JobRow, job_id)
        assert job is not None
        shard = job.shards[0]
        return job.status, job.phase, shard.state, shard.attempt, shard.message


def test_a_silent_shard_is_retried_then_fails_its_job(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.RUNNING, attempt=1, heartbeat_age_s=300)
    reaper = Maintenance(cp)
    reaper.reap_stale_shards()
    status, phase, state, attempt, message = _state(cp, job_id)
    assert (status, phase, state, attempt) == ("RUNNING", "RUNNING", "PENDING", 1)
    assert message.startswith("Attempt 1 failed: The runtime stopped sending heartbeats for 30s")
    with cp.sessionmaker() as session:  # the backoff has passed: the retry is dispatched
        shard = session.get(JobRow, job_id).shards[0]  # type: ignore[union-attr]
        shard.not_before = utcnow() - timedelta(seconds=1)
        shard_id = shard.id
        session.commit()
    reaper.dispatch_due()
    assert cp.dispatcher.sent == [("SYSTEM_COMPUTE_POOL_CPU", [shard_id])]  # type: ignore[attr-defined]
    with cp.sessionmaker() as session:  # the second attempt starts, then goes silent too
        shard = session.get(JobRow, job_id).shards[0]  # type: ignore[union-attr]
        shard.state, shard.attempt, shard.heartbeat_at = (
            ShardState.RUNNING,
            2,
            utcnow() - timedelta(minutes=5),
        )
        session.commit()
    reaper.reap_stale_shards()
    reaper.finalize_ended_jobs()
    status, phase, state, attempt, _ = _state(cp, job_id)
    assert (status, phase, state, attempt) == ("FAILED", "FINISHED", "FAILED", 2)


def test_finalization_commits_once_and_resumes_idempotently(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.DONE, attempt=2, heartbeat_age_s=0, files=2)
    with cp.sessionmaker() as session:
        session.get(JobRow, job_id).shards[0].finished_at = utcnow()  # type: ignore[union-attr]
        session.commit()
    finalize(cp, job_id)
    assert _state(cp, job_id)[:2] == ("DONE", "FINISHED")
    names = [e.key.rsplit("/", 1)[1] for e in cp.storage.list("stages/D/PUBLIC/S/out/")]
    assert names == ["_SUCCESS", "_manifest.json", "part-00000-00000.parquet", "part-00000-00001.parquet"]
    finalize(cp, job_id)  # a second call (a redelivered trigger) changes nothing
    finalize(cp, job_id, resume=True)
    assert _state(cp, job_id)[:2] == ("DONE", "FINISHED")
    assert len(cp.storage.list("stages/D/PUBLIC/S/out/")) == 4


def test_a_job_waits_for_its_worker_to_report_the_exit(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.DONE, attempt=1, heartbeat_age_s=0, files=1)
    Maintenance(cp).finalize_ended_jobs()
    assert _state(cp, job_id)[:2] == ("RUNNING", "RUNNING")  # finished_at not set: logs may still arrive
    with cp.sessionmaker() as session:  # the worker died: its heartbeat goes stale
        session.get(JobRow, job_id).shards[0].heartbeat_at = utcnow() - timedelta(minutes=5)  # type: ignore[union-attr]
        session.commit()
    reaper = Maintenance(cp)
    reaper.reap_stale_shards()
    reaper.finalize_ended_jobs()
    assert _state(cp, job_id)[:2] == ("DONE", "FINISHED")
