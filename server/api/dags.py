"""DAGs (task graphs): deploy, list, get, drop, resume, suspend, execute, and run history."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Query, Request, Response, status

from runbatch.errors import NotFoundError
from runbatch.wire.dags import DagCreate, DagPublic, DagRunPublic
from server import idempotency
from server.dags import service as dags
from server.db.tables import utcnow
from server.deps import ControlPlaneDep, SessionDep, UserDep

__all__ = ["router"]

router = APIRouter(tags=["dags"])

_DAGS = "/databases/{database}/schemas/{schema}/dags"
_DAG = _DAGS + "/{name}"


def _wake(request: Request) -> None:
    """Let this process's scheduler act now instead of at its next tick."""
    scheduler = getattr(request.app.state, "dag_scheduler", None)
    if scheduler is not None:
        scheduler.wake()


@router.post(_DAGS, status_code=status.HTTP_201_CREATED)
def deploy_dag(
    database: str, schema: str, body: DagCreate, request: Request, session: SessionDep, user: UserDep
) -> DagPublic:
    """Create a DAG with its tasks (``mode``: errorIfExists, orReplace, ifNotExists); a scheduled DAG starts."""
    dag, _ = dags.deploy_dag(session, database, schema, body, owner=user.name, now=utcnow())
    session.commit()
    _wake(request)
    return dags.dag_public(dag)


@router.get(_DAGS)
def list_dags(
    database: str, schema: str, session: SessionDep, _: UserDep, like: str | None = None
) -> list[DagPublic]:
    """DAGs of a schema by name; ``like`` filters case-insensitively with SQL wildcards (% and _)."""
    return [dags.dag_public(d) for d in dags.list_dags(session, database, schema, like)]


@router.get(_DAG)
def get_dag(database: str, schema: str, name: str, session: SessionDep, _: UserDep) -> DagPublic:
    return dags.dag_public(dags.get_dag(session, database, schema, name))


@router.delete(_DAG, status_code=status.HTTP_204_NO_CONTENT)
def drop_dag(
    database: str, schema: str, name: str, session: SessionDep, _: UserDep, if_exists: bool = False
) -> None:
    """Drop the DAG, its tasks and its run history; a run in progress is stopped."""
    try:
        dag = dags.get_dag(session, database, schema, name)
    except NotFoundError:
        if if_exists:
            return
        raise
    dags.drop_dag(session, dag)
    session.commit()


@router.post(_DAG + "/resume")
def resume_dag(
    database: str, schema: str, name: str, request: Request, session: SessionDep, _: UserDep
) -> DagPublic:
    """Start the schedule (interval slots count from now)."""
    dag = dags.get_dag(session, database, schema, name)
    dags.resume_dag(dag, utcnow())
    session.commit()
    _wake(request)
    return dags.dag_public(dag)


@router.post(_DAG + "/suspend")
def suspend_dag(database: str, schema: str, name: str, session: SessionDep, _: UserDep) -> DagPublic:
    """Stop the schedule; a run in progress finishes."""
    dag = dags.get_dag(session, database, schema, name)
    dags.suspend_dag(dag)
    session.commit()
    return dags.dag_public(dag)


@router.post(_DAG + "/execute", status_code=status.HTTP_201_CREATED)
def execute_dag(
    database: str,
    schema: str,
    name: str,
    request: Request,
    response: Response,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
    idempotency_key: idempotency.KeyHeader = None,
) -> DagRunPublic:
    """Run the DAG once now, outside its schedule (Snowflake's EXECUTE TASK)."""
    reservation = idempotency.reserve_request(cp.sessionmaker, request, response, user, idempotency_key, {})
    if reservation is not None and reservation.replay is not None:
        return DagRunPublic.model_validate(reservation.replay)
    with idempotency.answering(session, cp.sessionmaker, reservation) as answer:
        # Read after the reservation: on SQLite a transaction that read before another connection
        # wrote (the reservation) cannot write any more.
        dag = dags.get_dag(session, database, schema, name)
        run = dags.execute_dag(session, dag, utcnow())
        session.flush()
        session.refresh(run)
        public = dags.run_public(run, dag)
        answer(201, public.model_dump(mode="json"))
        session.commit()
    _wake(request)
    return public


@router.get(_DAG + "/runs")
def list_runs(
    database: str,
    schema: str,
    name: str,
    session: SessionDep,
    _: UserDep,
    current: bool | None = Query(default=None, description="true: scheduled or executing; false: ended"),
    error_only: bool = Query(default=False, description="Only FAILED and CANCELLED runs"),
    completed_within_s: float | None = Query(
        default=None, gt=0, description="Ended within this many seconds"
    ),
    limit: int = Query(default=100, description="At most this many, newest first (<= 0: all)"),
) -> list[DagRunPublic]:
    dag = dags.get_dag(session, database, schema, name)
    completed_after = None if completed_within_s is None else utcnow() - timedelta(seconds=completed_within_s)
    runs = dags.list_runs(
        session, dag, current=current, error_only=error_only, completed_after=completed_after, limit=limit
    )
    return [dags.run_public(r, dag) for r in runs]


@router.get(_DAG + "/runs/{run_uuid}")
def get_run(
    database: str, schema: str, name: str, run_uuid: uuid.UUID, session: SessionDep, _: UserDep
) -> DagRunPublic:
    dag = dags.get_dag(session, database, schema, name)
    return dags.run_public(dags.get_run(session, dag, run_uuid), dag)
