"""Workers register, heartbeat and sign off; anyone with a token can see them."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from runbatch.wire.workers import WorkerPublic, WorkerRegister
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.workers import service as workers

router = APIRouter(prefix="/workers", tags=["workers"])


@router.post("", status_code=status.HTTP_201_CREATED)
def register(body: WorkerRegister, session: SessionDep, cp: ControlPlaneDep, _: UserDep) -> WorkerPublic:
    row = workers.register(session, body)
    session.commit()
    return workers.worker_public(row, cp.settings.worker_timeout_s)


@router.post("/{worker_id}/heartbeat")
def heartbeat(worker_id: uuid.UUID, session: SessionDep, cp: ControlPlaneDep, _: UserDep) -> WorkerPublic:
    row = workers.heartbeat(session, worker_id)
    session.commit()
    return workers.worker_public(row, cp.settings.worker_timeout_s)


@router.delete("/{worker_id}", status_code=status.HTTP_204_NO_CONTENT)
def sign_off(worker_id: uuid.UUID, session: SessionDep, _: UserDep) -> None:
    workers.stop(session, worker_id)
    session.commit()


@router.get("")
def list_workers(
    session: SessionDep, cp: ControlPlaneDep, _: UserDep, pool: str | None = None
) -> list[WorkerPublic]:
    """Live workers (of ``pool`` when given)."""
    timeout = cp.settings.worker_timeout_s
    return [workers.worker_public(w, timeout) for w in workers.live_workers(session, timeout, pool)]
