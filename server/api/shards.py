"""The worker and runtime side of a shard: claim, work order, heartbeats, progress, end, logs."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import select

from runbatch.errors import ConflictError, PermissionDeniedError
from runbatch.wire.jobs import (
    LogBatch,
    ShardAck,
    ShardAssignment,
    ShardClaim,
    ShardComplete,
    ShardExit,
    ShardFail,
    ShardHeartbeat,
    ShardProgress,
    ShardWork,
)
from server.auth.tokens import ROLE_SHARD, Principal
from server.db.tables import JobRow, ShardRow
from server.deps import ControlPlaneDep, PrincipalDep, SessionDep, UserDep
from server.jobs import service as jobs
from server.jobs import shards as protocol
from server.jobs.finalize import finalize_soon
from server.jobs.states import ShardState
from server.metrics import attempt_open

router = APIRouter(prefix="/shards", tags=["shards"])


class PendingShard(BaseModel):
    id: uuid.UUID
    compute_pool: str


def _own(principal: Principal, shard_id: uuid.UUID) -> None:
    if principal.role == ROLE_SHARD and principal.shard_id != shard_id:
        raise PermissionDeniedError("This token belongs to another shard.")


@router.get("")
def pending_shards(session: SessionDep, _: UserDep, pool: str | None = None) -> list[PendingShard]:
    """Shards waiting for a worker (for a worker that starts up to pick up what is queued)."""
    query = (
        select(ShardRow)
        .join(ShardRow.job)
        .where(ShardRow.state == ShardState.PENDING, ShardRow.not_before.is_(None))
    )
    if pool is not None:
        query = query.where(JobRow.compute_pool == pool)
    return [
        PendingShard(id=s.id, compute_pool=s.job.compute_pool)
        for s in session.scalars(query.order_by(JobRow.created_at))
    ]


@router.post("/{shard_id}/claim")
def claim_shard(
    shard_id: uuid.UUID, body: ShardClaim, session: SessionDep, cp: ControlPlaneDep, _: UserDep
) -> ShardAssignment:
    """Win a shard before starting anything; 409 when another worker already has it or the job stopped."""
    try:
        shard, secret = protocol.claim(session, shard_id, body.worker)
    except ConflictError:
        session.commit()  # keeps the CANCELLED mark of a stopped job's pending shard
        raise
    session.commit()
    return ShardAssignment(work=protocol.build_work(session, cp, shard), token=secret)


@router.get("/{shard_id}/work", response_model=ShardWork)
def get_work(
    shard_id: uuid.UUID, session: SessionDep, cp: ControlPlaneDep, principal: PrincipalDep
) -> JSONResponse:
    """The work order, with the storage credentials the runtime needs (the only response that has them)."""
    _own(principal, shard_id)
    work = protocol.build_work(session, cp, protocol.get_shard(session, shard_id))
    return JSONResponse(work.model_dump(mode="json", context={"secrets": "reveal"}))


@router.post("/{shard_id}/heartbeat")
def heartbeat(
    shard_id: uuid.UUID, body: ShardHeartbeat, session: SessionDep, principal: PrincipalDep
) -> ShardAck:
    _own(principal, shard_id)
    cancel = protocol.heartbeat(session, shard_id, body.attempt)
    session.commit()
    return ShardAck(cancel=cancel)


@router.post("/{shard_id}/progress")
def progress(
    shard_id: uuid.UUID, body: ShardProgress, session: SessionDep, principal: PrincipalDep
) -> ShardAck:
    _own(principal, shard_id)
    cancel = protocol.heartbeat(
        session, shard_id, body.attempt, rows_done=body.rows_done, rows_failed=body.rows_failed
    )
    session.commit()
    return ShardAck(cancel=cancel)


@router.post("/{shard_id}/complete", status_code=status.HTTP_204_NO_CONTENT)
def complete(
    shard_id: uuid.UUID,
    body: ShardComplete,
    session: SessionDep,
    principal: PrincipalDep,
) -> None:
    _own(principal, shard_id)
    protocol.complete(session, shard_id, body.attempt, body.files, body.rows_done, body.rows_failed)
    session.commit()


@router.post("/{shard_id}/fail", status_code=status.HTTP_204_NO_CONTENT)
def fail(shard_id: uuid.UUID, body: ShardFail, session: SessionDep, principal: PrincipalDep) -> None:
    """The runtime reports its own failure (the model raised); its worker reports the exit after."""
    _own(principal, shard_id)
    protocol.fail(session, shard_id, body.attempt, body.message, retryable=body.retryable, ended=False)
    session.commit()


@router.post("/{shard_id}/exit", status_code=status.HTTP_204_NO_CONTENT)
def report_exit(
    shard_id: uuid.UUID, body: ShardExit, session: SessionDep, cp: ControlPlaneDep, _: UserDep
) -> None:
    """The worker reports the runtime's exit, after shipping its last output lines."""
    ending = attempt_open(protocol.get_shard(session, shard_id), body.attempt)
    shard = protocol.exit_reported(session, shard_id, body.attempt, body.message, retryable=body.retryable)
    session.commit()
    if ending:
        cp.metrics.shard_ended(shard)
    if shard.state == ShardState.PENDING:
        return  # a retry: the reaper dispatches it when its backoff ends
    finalize_soon(cp, shard.job_id)


@router.post("/{shard_id}/logs", status_code=status.HTTP_204_NO_CONTENT)
def append_logs(shard_id: uuid.UUID, body: LogBatch, session: SessionDep, principal: PrincipalDep) -> None:
    _own(principal, shard_id)
    shard = protocol.get_shard(session, shard_id)
    jobs.append_logs(session, shard.job_id, shard.index, body.attempt, body.lines)
    session.commit()
