"""Compare-and-set transitions: exactly one of two racing writers wins."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session

from server.db.tables import JobRow
from server.jobs.states import (
    JOB_TRANSITIONS,
    TERMINAL_JOB_STATUSES,
    JobPhase,
    JobStatus,
    ShardState,
    transition_job,
    transition_phase,
    transition_shard,
)
from tests.server.conftest import add_job


def _job(session: Session) -> JobRow:
    return add_job(session)


def test_statuses_are_snowflakes() -> None:
    assert [s.value for s in JobStatus] == [
        "PENDING",
        "RUNNING",
        "FAILED",
        "DONE",
        "CANCELLING",
        "CANCELLED",
        "INTERNAL_ERROR",
        "DELETED",
    ]
    for terminal in TERMINAL_JOB_STATUSES - {JobStatus.DELETED}:
        assert JOB_TRANSITIONS[terminal] == {JobStatus.DELETED}


def test_job_compare_and_set(db_session: Session) -> None:
    job = _job(db_session)
    assert transition_job(db_session, job.id, from_={JobStatus.PENDING}, to=JobStatus.RUNNING)
    assert not transition_job(db_session, job.id, from_={JobStatus.PENDING}, to=JobStatus.RUNNING)
    assert transition_job(db_session, job.id, from_={JobStatus.RUNNING}, to=JobStatus.DONE)
    with pytest.raises(ValueError, match="illegal transition"):
        transition_job(db_session, job.id, from_={JobStatus.DONE}, to=JobStatus.RUNNING)


def test_shard_claim_is_won_once_per_attempt(db_session: Session) -> None:
    shard = _job(db_session).shards[0]
    won = [
        transition_shard(
            db_session, shard.id, from_={ShardState.PENDING}, to=ShardState.RUNNING, on_attempt=0, attempt=1
        )
        for _ in range(2)
    ]
    assert won == [True, False]
    # A stale attempt cannot complete a shard that was retried.
    assert transition_shard(
        db_session, shard.id, from_={ShardState.RUNNING}, to=ShardState.PENDING, on_attempt=1
    )
    assert transition_shard(
        db_session, shard.id, from_={ShardState.PENDING}, to=ShardState.RUNNING, on_attempt=1, attempt=2
    )
    assert not transition_shard(
        db_session, shard.id, from_={ShardState.RUNNING}, to=ShardState.DONE, on_attempt=1
    )
    assert transition_shard(
        db_session, shard.id, from_={ShardState.RUNNING}, to=ShardState.DONE, on_attempt=2
    )


def test_finalization_phase_is_won_once(db_session: Session) -> None:
    job = _job(db_session)
    sources = {JobPhase.QUEUED, JobPhase.RUNNING, JobPhase.FAILING}
    assert transition_phase(db_session, job.id, from_=sources, to=JobPhase.FINALIZING)
    assert not transition_phase(db_session, job.id, from_=sources, to=JobPhase.FINALIZING)
