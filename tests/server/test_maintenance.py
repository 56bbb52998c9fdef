"""The reaper and finalization on a real metadata database and storage (no workers attached)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from server.control_plane import ControlPlane
from server.db.tables import JobLogRow, JobRow, ShardRow, utcnow
from server.jobs import service as jobs
from server.jobs.finalize import finalize
from server.jobs.states import JobPhase, JobStatus, ShardState, transition_job, transition_phase
from server.maintenance import Maintenance
from tests.server.conftest import OUTPUT_KEY, RecordingDispatcher, add_job


def _job(
    cp: ControlPlane, *, shard_state: ShardState, attempt: int, heartbeat_age_s: float, files: int = 0
) -> uuid.UUID:
    output_files = []
    for i in range(files):
        key = f"{OUTPUT_KEY}/_temporary/shards/00000/{attempt}/part-00000-{i:05d}.parquet"
        cp.storage.write_bytes(key, b"data")
        output_files.append({"key": key, "rows": 10, "bytes": 4})
    shard = ShardRow(
        index=0,
        state=shard_state,
        attempt=attempt,
        max_attempts=2,
        slices=[],
        rows_total=10 * files,
        rows_done=10 * files,
        started_at=utcnow() - timedelta(seconds=heartbeat_age_s + 60),
        heartbeat_at=utcnow() - timedelta(seconds=heartbeat_age_s),
        output_files=output_files,
    )
    with cp.sessionmaker() as session:
        job = add_job(
            session, status=JobStatus.RUNNING, phase=JobPhase.RUNNING, shard=shard, rows_total=10 * files
        )
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
        shard.state, shard.attempt, shard.started_at, shard.heartbeat_at = (
            ShardState.RUNNING,
            2,
            utcnow() - timedelta(minutes=7),
            utcnow() - timedelta(minutes=5),
        )
        session.commit()
    reaper.reap_stale_shards()
    reaper.finalize_ended_jobs()
    status, phase, state, attempt, _ = _state(cp, job_id)
    assert (status, phase, state, attempt) == ("FAILED", "FINISHED", "FAILED", 2)
    # Both reaped attempts count in the shard duration histogram, as exit reports would.
    for outcome, seconds in (("retried", 360), ("failed", 420)):
        labels = {"compute_pool": "SYSTEM_COMPUTE_POOL_CPU", "outcome": outcome}
        assert cp.metrics.registry.get_sample_value("runbatch_shard_duration_seconds_count", labels) == 1
        total = cp.metrics.registry.get_sample_value("runbatch_shard_duration_seconds_sum", labels)
        assert total is not None and seconds <= total < seconds + 30


def test_finalization_commits_once_and_resumes_idempotently(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.DONE, attempt=2, heartbeat_age_s=0, files=2)
    with cp.sessionmaker() as session:
        session.get(JobRow, job_id).shards[0].finished_at = utcnow()  # type: ignore[union-attr]
        session.commit()
    finalize(cp, job_id)
    assert _state(cp, job_id)[:2] == ("DONE", "FINISHED")
    names = [e.key.rsplit("/", 1)[1] for e in cp.storage.list(f"{OUTPUT_KEY}/")]
    assert names == ["_SUCCESS", "_manifest.json", "part-00000-00000.parquet", "part-00000-00001.parquet"]
    finalize(cp, job_id)  # a second call (a redelivered trigger) changes nothing
    finalize(cp, job_id, resume=True)
    assert _state(cp, job_id)[:2] == ("DONE", "FINISHED")
    assert len(cp.storage.list(f"{OUTPUT_KEY}/")) == 4


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


def _ended(cp: ControlPlane, job_id: uuid.UUID) -> None:
    with cp.sessionmaker() as session:
        session.get(JobRow, job_id).shards[0].finished_at = utcnow()  # type: ignore[union-attr]
        session.commit()


def _win_finalizing(cp: ControlPlane, job_id: uuid.UUID) -> None:
    with cp.sessionmaker() as session:
        assert transition_phase(session, job_id, from_={JobPhase.RUNNING}, to=JobPhase.FINALIZING)
        session.commit()


def _out_names(cp: ControlPlane) -> list[str]:
    return [e.key.rsplit("/", 1)[1] for e in cp.storage.list(f"{OUTPUT_KEY}/")]


def test_cancel_during_finalization_is_too_late(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.DONE, attempt=1, heartbeat_age_s=0, files=1)
    _ended(cp, job_id)
    _win_finalizing(cp, job_id)
    with cp.sessionmaker() as session:
        jobs.cancel_job(session, session.get(JobRow, job_id))  # type: ignore[arg-type]
        session.commit()
    assert _state(cp, job_id)[:2] == ("RUNNING", "FINALIZING")
    finalize(cp, job_id, resume=True)
    assert _state(cp, job_id)[:2] == ("DONE", "FINISHED")
    assert _out_names(cp) == ["_SUCCESS", "_manifest.json", "part-00000-00000.parquet"]


def test_a_cancel_that_races_finalization_still_ends_the_job(cp: ControlPlane) -> None:
    # On Postgres a cancel can read RUNNING just before the finalizer wins: the job must not stick.
    job_id = _job(cp, shard_state=ShardState.DONE, attempt=1, heartbeat_age_s=0, files=1)
    _ended(cp, job_id)
    _win_finalizing(cp, job_id)
    with cp.sessionmaker() as session:
        assert transition_job(session, job_id, from_={JobStatus.RUNNING}, to=JobStatus.CANCELLING)
        session.commit()
    finalize(cp, job_id, resume=True)
    assert _state(cp, job_id)[:2] == ("DONE", "FINISHED")


def test_delete_during_finalization_ends_deleted_and_drops_the_logs(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.DONE, attempt=1, heartbeat_age_s=0, files=1)
    _ended(cp, job_id)
    _win_finalizing(cp, job_id)
    with cp.sessionmaker() as session:
        jobs.append_logs(session, job_id, 0, 1, ["a line"])
        assert not jobs.delete_job(session, session.get(JobRow, job_id))  # type: ignore[arg-type]
        session.commit()
    finalize(cp, job_id, resume=True)
    assert _state(cp, job_id)[:2] == ("DELETED", "FINISHED")
    with cp.sessionmaker() as session:
        assert session.scalar(select(func.count()).select_from(JobLogRow)) == 0
    assert _out_names(cp) == ["_SUCCESS", "_manifest.json", "part-00000-00000.parquet"]


def test_a_failed_job_cancelled_afterwards_keeps_its_reason(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.FAILED, attempt=1, heartbeat_age_s=0)
    _ended(cp, job_id)
    with cp.sessionmaker() as session:
        transition_phase(
            session, job_id, from_={JobPhase.RUNNING}, to=JobPhase.FAILING, message="Shard 0 failed: boom"
        )
        jobs.cancel_job(session, session.get(JobRow, job_id))  # type: ignore[arg-type]
        session.commit()
    finalize(cp, job_id)
    with cp.sessionmaker() as session:
        job = session.get(JobRow, job_id)
        assert job is not None
        assert (job.status, job.phase, job.message) == ("FAILED", "FINISHED", "Shard 0 failed: boom")


def test_finalization_never_moves_a_key_outside_the_shards_folder(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.DONE, attempt=1, heartbeat_age_s=0, files=1)
    cp.storage.write_bytes("stages/D/PUBLIC/PRIVATE/secret.txt", b"secret")
    with cp.sessionmaker() as session:
        shard = session.get(JobRow, job_id).shards[0]  # type: ignore[union-attr]
        shard.output_files = [{"key": "stages/D/PUBLIC/PRIVATE/secret.txt", "rows": 10, "bytes": 6}]
        shard.finished_at = utcnow()
        session.commit()
    finalize(cp, job_id)
    status, phase, *_ = _state(cp, job_id)
    assert (status, phase) == ("INTERNAL_ERROR", "FINISHED")
    assert cp.storage.read_bytes("stages/D/PUBLIC/PRIVATE/secret.txt") == b"secret"
    assert _out_names(cp) == []  # no _SUCCESS, and _temporary/ is gone


def test_a_shard_whose_dispatch_was_lost_is_sent_again(cp: ControlPlane) -> None:
    job_id = _job(cp, shard_state=ShardState.PENDING, attempt=0, heartbeat_age_s=0)
    dispatcher: RecordingDispatcher = cp.dispatcher  # type: ignore[assignment]
    with cp.sessionmaker() as session:
        shard = session.get(JobRow, job_id).shards[0]  # type: ignore[union-attr]
        shard.dispatched_at = utcnow() - timedelta(seconds=cp.settings.redispatch_after_s + 1)
        shard_id = shard.id
        session.commit()
    reaper = Maintenance(cp)
    dispatcher.queued = 1  # its message may still be in the queue: wait
    reaper.dispatch_due()
    assert dispatcher.sent == []
    dispatcher.queued = 0  # the queue is empty and the shard still waits: the message was lost
    reaper.dispatch_due()
    assert dispatcher.sent == [("SYSTEM_COMPUTE_POOL_CPU", [shard_id])]
    reaper.dispatch_due()  # sent again only after another redispatch_after_s
    assert len(dispatcher.sent) == 1


def test_logs_are_capped_per_instance(cp: ControlPlane, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jobs, "_MAX_LOG_LINES_PER_INSTANCE", 5)
    job_id = _job(cp, shard_state=ShardState.RUNNING, attempt=1, heartbeat_age_s=0)
    with cp.sessionmaker() as session:
        jobs.append_logs(session, job_id, 0, 1, ["1", "2", "3"])
        jobs.append_logs(session, job_id, 0, 2, ["4", "5", "6", "7"])
        jobs.append_logs(session, job_id, 0, 2, ["8"])
        jobs.append_logs(session, job_id, 1, 1, ["other"])
        job = session.get(JobRow, job_id)
        assert job is not None
        lines = [entry.line for entry in jobs.read_logs(session, job, instance_id=0, limit=-1)]
        session.commit()
    assert lines == [
        "1",
        "2",
        "3",
        "4",
        "[runbatch] instance 0 reached the limit of 5 log lines; later lines are dropped.",
    ]
