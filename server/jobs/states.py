"""The one state machine of jobs and shards. Every status change goes through ``transition_*``.

Transitions are compare-and-set updates (``UPDATE ... WHERE status IN (:from)``): under
Celery's at-least-once delivery, two workers may race to claim one shard, and two shard
completions may race to finalize one job; the loser's update matches no row.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.db.tables import JobRow, ShardRow, utcnow

__all__ = [
    "JOB_TRANSITIONS",
    "SHARD_TRANSITIONS",
    "TERMINAL_JOB_STATUSES",
    "JobPhase",
    "JobStatus",
    "ShardState",
    "transition_job",
    "transition_phase",
    "transition_shard",
]


class JobStatus(StrEnum):
    """Snowflake's job statuses, exactly."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FAILED = "FAILED"
    DONE = "DONE"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    DELETED = "DELETED"


class JobPhase(StrEnum):
    """Where a job is inside its status; ours, beyond Snowflake's statuses."""

    AWAITING_INPUT = "AWAITING_INPUT"  # the client is uploading the input
    QUEUED = "QUEUED"  # shards planned and dispatched, none started
    RUNNING = "RUNNING"
    FAILING = "FAILING"  # a shard failed for good; the others are being stopped
    FINALIZING = "FINALIZING"  # all shards ended; output being committed
    FINISHED = "FINISHED"


class ShardState(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


TERMINAL_JOB_STATUSES = frozenset(
    {JobStatus.FAILED, JobStatus.DONE, JobStatus.CANCELLED, JobStatus.INTERNAL_ERROR, JobStatus.DELETED}
)
TERMINAL_SHARD_STATES = frozenset({ShardState.DONE, ShardState.FAILED, ShardState.CANCELLED})

JOB_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset(
        {
            JobStatus.RUNNING,
            JobStatus.CANCELLING,
            JobStatus.CANCELLED,
            JobStatus.FAILED,
            JobStatus.DONE,
            JobStatus.INTERNAL_ERROR,
            JobStatus.DELETED,
        }
    ),
    JobStatus.RUNNING: frozenset(
        {JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLING, JobStatus.INTERNAL_ERROR, JobStatus.DELETED}
    ),
    # A cancel that races a job's last shard can lose: the job then ends as it would have.
    JobStatus.CANCELLING: frozenset(
        {JobStatus.CANCELLED, JobStatus.DONE, JobStatus.FAILED, JobStatus.DELETED, JobStatus.INTERNAL_ERROR}
    ),
    JobStatus.DONE: frozenset({JobStatus.DELETED}),
    JobStatus.FAILED: frozenset({JobStatus.DELETED}),
    JobStatus.CANCELLED: frozenset({JobStatus.DELETED}),
    JobStatus.INTERNAL_ERROR: frozenset({JobStatus.DELETED}),
    JobStatus.DELETED: frozenset(),
}

SHARD_TRANSITIONS: dict[ShardState, frozenset[ShardState]] = {
    ShardState.PENDING: frozenset({ShardState.RUNNING, ShardState.CANCELLED, ShardState.FAILED}),
    # RUNNING -> PENDING is a retry after a crash or a lost heartbeat.
    ShardState.RUNNING: frozenset(
        {ShardState.DONE, ShardState.FAILED, ShardState.PENDING, ShardState.CANCELLED}
    ),
    ShardState.DONE: frozenset(),
    ShardState.FAILED: frozenset(),
    ShardState.CANCELLED: frozenset(),
}


def _check(table: dict[Any, frozenset[Any]], from_: set[Any], to: Any) -> None:
    illegal = [f for f in from_ if to not in table[f]]
    if illegal:
        raise ValueError(f"illegal transition {sorted(illegal)} -> {to}")


def transition_job(
    session: Session, job_id: uuid.UUID, *, from_: set[JobStatus], to: JobStatus, **values: Any
) -> bool:
    """Move a job to ``to`` if it is in one of ``from_``; False when another writer got there first."""
    _check(JOB_TRANSITIONS, from_, to)
    stmt = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.status.in_([s.value for s in from_]))
        .values(status=to.value, **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined,no-any-return]


def transition_shard(
    session: Session,
    shard_id: uuid.UUID,
    *,
    from_: set[ShardState],
    to: ShardState,
    on_attempt: int | None = None,
    **values: Any,
) -> bool:
    """Move a shard to ``to`` if it is in ``from_`` (and, when given, still on attempt ``on_attempt``)."""
    _check(SHARD_TRANSITIONS, from_, to)
    conditions = [ShardRow.id == shard_id, ShardRow.state.in_([s.value for s in from_])]
    if on_attempt is not None:
        conditions.append(ShardRow.attempt == on_attempt)
    stmt = (
        update(ShardRow)
        .where(*conditions)
        .values(state=to.value, **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined,no-any-return]


def transition_phase(
    session: Session, job_id: uuid.UUID, *, from_: set[JobPhase], to: JobPhase, **values: Any
) -> bool:
    """Compare-and-set on the phase; winning FINALIZING is what makes finalization happen once."""
    stmt = (
        update(JobRow)
        .where(JobRow.id == job_id, JobRow.phase.in_([p.value for p in from_]))
        .values(phase=to.value, phase_at=utcnow(), **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined,no-any-return]
