"""DAGs (Snowflake's task graphs): deploy, resume, suspend, execute, drop, and run history.

Services only flush; the routes commit. A DAG is stored whole: the root (schedule, options)
and its tasks; redeploying with ``orReplace`` keeps the DAG's run history and bumps its
``graph_version``, as Snowflake's CREATE OR REPLACE keeps a task's history by name.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from collections import deque
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.errors import ConflictError, InvalidArgumentError, NotFoundError
from runbatch.identifiers import qualified
from runbatch.wire.dags import (
    DagCreate,
    DagPublic,
    DagRunPublic,
    DagSchedule,
    DagTaskCreate,
    DagTaskPublic,
    TaskRunPublic,
)
from server.dags.schedule import Slots
from server.dags.states import TERMINAL_RUN_STATES, DagState, RunState
from server.db.tables import DagRow, DagRunRow, DagTaskRow, SchemaRow
from server.resources import service as resources

__all__ = [
    "DEFAULT_FAILURES_BEFORE_SUSPEND",
    "MAX_DEFINITION_BYTES",
    "consecutive_failures",
    "dag_name",
    "dag_public",
    "deploy_dag",
    "drop_dag",
    "execute_dag",
    "get_dag",
    "get_run",
    "list_dags",
    "list_runs",
    "resume_dag",
    "run_public",
    "suspend_dag",
]

# A Python task travels pickled in the metadata database; big data belongs in a table or on a stage.
MAX_DEFINITION_BYTES = 16 << 20
# Snowflake's SUSPEND_TASK_AFTER_NUM_FAILURES default: this many failed runs in a row suspend the DAG.
DEFAULT_FAILURES_BEFORE_SUSPEND = 10


def dag_name(dag: DagRow) -> str:
    return qualified(dag.schema.database.name, dag.schema.name, dag.name)


def _like(pattern: str) -> str:
    """A SQL LIKE pattern as a case-insensitive regular expression (Snowflake's SHOW ... LIKE)."""
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    return "(?is)" + "".join(out)


def get_dag(session: Session, database: str, schema: str, name: str) -> DagRow:
    sch = resources.get_schema(session, database, schema)
    dag = session.scalars(select(DagRow).where(DagRow.schema_id == sch.id, DagRow.name == name)).one_or_none()
    if dag is None:
        raise NotFoundError(
            f"Task graph {qualified(database, schema, name)} does not exist or not authorized."
        )
    return dag


def list_dags(session: Session, database: str, schema: str, like: str | None = None) -> list[DagRow]:
    sch = resources.get_schema(session, database, schema)
    dags = list(session.scalars(select(DagRow).where(DagRow.schema_id == sch.id).order_by(DagRow.name)))
    if like is None:
        return dags
    regex = re.compile(_like(like))
    return [d for d in dags if regex.fullmatch(d.name)]


def _check_graph(body: DagCreate) -> None:
    names = [t.name for t in body.tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InvalidArgumentError(
            f"Task graph {body.name} has more than one task named {', '.join(duplicates)}."
        )
    known = set(names)
    finalizers = [t for t in body.tasks if t.is_finalizer]
    if len(finalizers) > 1:
        raise InvalidArgumentError(
            f"Task graph {body.name} has {len(finalizers)} finalizer tasks "
            f"({', '.join(t.name for t in finalizers)}); it can have one."
        )
    finalizer_names = {t.name for t in finalizers}
    for task in body.tasks:
        for pred in task.predecessors:
            if pred not in known:
                raise InvalidArgumentError(
                    f"Task {task.name} of task graph {body.name} follows {pred}, which is not in the graph."
                )
            if pred in finalizer_names:
                raise InvalidArgumentError(f"Finalizer task {pred} cannot be predecessor of any task")
        if task.is_finalizer and task.predecessors:
            raise InvalidArgumentError(f"Finalizer task {task.name} cannot have any predecessors")
    indegree = {t.name: len(set(t.predecessors)) for t in body.tasks}
    followers: dict[str, list[str]] = {t.name: [] for t in body.tasks}
    for task in body.tasks:
        for pred in set(task.predecessors):
            followers[pred].append(task.name)
    ready = deque(n for n, d in indegree.items() if d == 0)
    seen = 0
    while ready:
        name = ready.popleft()
        seen += 1
        for follower in followers[name]:
            indegree[follower] -= 1
            if indegree[follower] == 0:
                ready.append(follower)
    if seen != len(body.tasks):
        cyclic = sorted(n for n, d in indegree.items() if d > 0)
        raise InvalidArgumentError(f"There is a cycle in the task graph (tasks {', '.join(cyclic)}).")


def _definition(task: DagTaskCreate) -> bytes | None:
    if task.python is None:
        return None
    try:
        payload = base64.b64decode(task.python, validate=True)
    except binascii.Error:
        raise InvalidArgumentError(f"Task {task.name}: 'python' is not base64.") from None
    if len(payload) > MAX_DEFINITION_BYTES:
        raise InvalidArgumentError(
            f"Task {task.name}'s Python definition is {len(payload) >> 20} MiB pickled, over the limit of "
            f"{MAX_DEFINITION_BYTES >> 20} MiB. Large data should not travel inside a task: save it as a table "
            "(df.write.save_as_table) or on a stage, and read it from there (session.table(...))."
        )
    return payload


def _schedule_json(schedule: DagSchedule | None) -> dict[str, Any] | None:
    return None if schedule is None else schedule.model_dump(exclude_none=True)


def _start(dag: DagRow, now: datetime) -> None:
    """Start the schedule from ``now``: interval slots count from here, cron slots are the next ones."""
    slots = Slots.of(dag.schedule, now)
    if slots is None:
        raise InvalidArgumentError(
            f"Task graph {dag_name(dag)} has no schedule, so it cannot be resumed; run it with "
            "DAGOperation.run(dag), or deploy it with a schedule."
        )
    dag.state = DagState.STARTED
    dag.schedule_anchor_at = now
    dag.next_slot_at = slots.first_after(now)
    dag.last_suspended_reason = None


def deploy_dag(
    session: Session, database: str, schema: str, body: DagCreate, *, owner: str, now: datetime
) -> tuple[DagRow, bool]:
    """Create (or replace) a DAG with its tasks; a scheduled one starts at once. Returns (dag, deployed)."""
    sch: SchemaRow = resources.get_schema(session, database, schema)
    _check_graph(body)
    schedule = _schedule_json(body.schedule)
    Slots.of(schedule, now)  # a bad cron expression or time zone is refused before anything changes
    definitions = [_definition(t) for t in body.tasks]
    dag = session.scalars(
        select(DagRow).where(DagRow.schema_id == sch.id, DagRow.name == body.name)
    ).one_or_none()
    if dag is not None:
        if body.mode == "ifNotExists":
            return dag, False
        if body.mode == "errorIfExists":
            raise ConflictError(
                f"Task graph {qualified(database, schema, body.name)} already exists. Deploy with "
                "mode=CreateMode.or_replace to replace it, or drop it first (DAGOperation.drop)."
            )
        dag.tasks.clear()
        session.flush()  # the old tasks' names are free before the new ones are inserted
        dag.graph_version += 1
    else:
        dag = DagRow(schema_id=sch.id, name=body.name, owner=owner, graph_version=1)
        session.add(dag)
    dag.schedule = schedule
    dag.warehouse = body.warehouse
    dag.comment = body.comment
    dag.allow_overlapping_execution = body.allow_overlapping_execution
    dag.user_task_timeout_ms = body.user_task_timeout_ms
    dag.suspend_task_after_num_failures = body.suspend_task_after_num_failures
    dag.config = body.config
    dag.session_parameters = body.session_parameters
    dag.use_func_return_value = body.use_func_return_value
    dag.tasks = [
        DagTaskRow(
            name=t.name,
            position=i,
            kind=t.kind,
            sql=t.sql,
            python=definition,
            predecessors=list(dict.fromkeys(t.predecessors)),
            is_finalizer=t.is_finalizer,
            comment=t.comment,
            warehouse=t.warehouse,
            user_task_timeout_ms=t.user_task_timeout_ms,
            session_parameters=t.session_parameters,
            summary=t.summary,
        )
        for i, (t, definition) in enumerate(zip(body.tasks, definitions, strict=True))
    ]
    if schedule is not None:
        _start(dag, now)
    else:
        dag.state = DagState.SUSPENDED
        dag.schedule_anchor_at = None
        dag.next_slot_at = None
    session.flush()
    return dag, True


def resume_dag(dag: DagRow, now: datetime) -> None:
    if dag.state != DagState.STARTED:
        _start(dag, now)


def suspend_dag(dag: DagRow, reason: str | None = None) -> None:
    dag.state = DagState.SUSPENDED
    dag.next_slot_at = None
    dag.last_suspended_reason = reason


def drop_dag(session: Session, dag: DagRow) -> None:
    """Remove the DAG, its tasks and its history; a run still executing is stopped by its process."""
    session.delete(dag)
    session.flush()


def _active_run(session: Session, dag: DagRow) -> DagRunRow | None:
    return session.scalars(
        select(DagRunRow)
        .where(DagRunRow.dag_id == dag.id, DagRunRow.state.in_([RunState.SCHEDULED, RunState.EXECUTING]))
        .order_by(DagRunRow.scheduled_at)
        .limit(1)
    ).first()


def execute_dag(session: Session, dag: DagRow, now: datetime) -> DagRunRow:
    """A run now, outside the schedule (Snowflake's EXECUTE TASK); a scheduler process claims it."""
    active = _active_run(session, dag)
    if active is not None and not dag.allow_overlapping_execution:
        raise ConflictError(
            f"Task graph {dag_name(dag)} has a run {active.state.lower()} (scheduled for "
            f"{active.scheduled_at.isoformat()}) and does not allow overlapping runs. Wait for it to end, or "
            "deploy the DAG with allow_overlapping_execution=True."
        )
    run = DagRunRow(
        id=uuid.uuid4(),
        dag_id=dag.id,
        trigger="EXECUTE",
        slot_at=None,
        scheduled_at=now,
        state=RunState.SCHEDULED,
        missed_slots=0,
        graph_version=dag.graph_version,
    )
    session.add(run)
    session.flush()
    return run


def get_run(session: Session, dag: DagRow, run_id: uuid.UUID) -> DagRunRow:
    run = session.get(DagRunRow, run_id)
    if run is None or run.dag_id != dag.id:
        raise NotFoundError(f"Task graph {dag_name(dag)} has no run {run_id}.")
    return run


def list_runs(
    session: Session,
    dag: DagRow,
    *,
    current: bool | None = None,
    error_only: bool = False,
    completed_after: datetime | None = None,
    limit: int = 100,
) -> list[DagRunRow]:
    """Runs newest first: ``current`` ones (scheduled or executing), complete ones, or all (None)."""
    query = select(DagRunRow).where(DagRunRow.dag_id == dag.id)
    if current is True:
        query = query.where(DagRunRow.state.in_([RunState.SCHEDULED, RunState.EXECUTING]))
    elif current is False:
        query = query.where(DagRunRow.state.in_([s.value for s in TERMINAL_RUN_STATES]))
    if error_only:
        query = query.where(DagRunRow.state.in_([RunState.FAILED, RunState.CANCELLED]))
    if completed_after is not None:
        query = query.where(DagRunRow.completed_at >= completed_after)
    query = query.order_by(DagRunRow.scheduled_at.desc(), DagRunRow.created_at.desc())
    if limit > 0:
        query = query.limit(limit)
    return list(session.scalars(query))


def consecutive_failures(session: Session, dag_id: uuid.UUID, limit: int) -> int:
    """How many of the DAG's latest ended runs failed in a row (looking at ``limit`` at most)."""
    states = session.scalars(
        select(DagRunRow.state)
        .where(
            DagRunRow.dag_id == dag_id,
            DagRunRow.state.in_([RunState.SUCCEEDED, RunState.FAILED]),
        )
        .order_by(DagRunRow.completed_at.desc())
        .limit(limit)
    ).all()
    count = 0
    for state in states:
        if state != RunState.FAILED:
            break
        count += 1
    return count


def dag_public(dag: DagRow) -> DagPublic:
    return DagPublic(
        database_name=dag.schema.database.name,
        schema_name=dag.schema.name,
        name=dag.name,
        state="started" if dag.state == DagState.STARTED else "suspended",
        schedule=None if dag.schedule is None else DagSchedule.model_validate(dag.schedule),
        next_scheduled_time=dag.next_slot_at,
        graph_version=dag.graph_version,
        warehouse=dag.warehouse,
        comment=dag.comment,
        allow_overlapping_execution=dag.allow_overlapping_execution,
        user_task_timeout_ms=dag.user_task_timeout_ms,
        suspend_task_after_num_failures=dag.suspend_task_after_num_failures,
        config=dag.config,
        use_func_return_value=dag.use_func_return_value,
        owner=dag.owner,
        created_on=dag.created_on,
        last_suspended_reason=dag.last_suspended_reason,
        tasks=[
            DagTaskPublic(
                name=t.name,
                full_name=f"{dag.name}${t.name}",
                kind=t.kind,
                sql=t.sql,
                predecessors=list(t.predecessors),
                is_finalizer=t.is_finalizer,
                comment=t.comment,
                user_task_timeout_ms=t.user_task_timeout_ms,
                summary=t.summary,
            )
            for t in dag.tasks
        ],
    )


def run_public(run: DagRunRow, dag: DagRow) -> DagRunPublic:
    return DagRunPublic(
        uuid=run.id,
        run_id=int(run.scheduled_at.timestamp() * 1000),
        dag_name=dag.name,
        database_name=dag.schema.database.name,
        schema_name=dag.schema.name,
        state=run.state,
        trigger="EXECUTE" if run.trigger == "EXECUTE" else "SCHEDULE",
        scheduled_time=run.scheduled_at,
        query_start_time=run.started_at,
        completed_time=run.completed_at,
        next_scheduled_time=dag.next_slot_at if dag.state == DagState.STARTED else None,
        first_error_task_name=run.first_error_task_name,
        first_error_code=run.first_error_code,
        first_error_message=run.first_error_message,
        graph_version=run.graph_version,
        missed_slots=run.missed_slots,
        tasks=[
            TaskRunPublic(
                name=t.name,
                full_name=f"{dag.name}${t.name}",
                state=t.state,
                return_value=t.return_value,
                error_message=t.error_message,
                query_start_time=t.started_at,
                completed_time=t.completed_at,
                job_ids=list(t.job_ids),
                log=t.log,
            )
            for t in run.task_runs
        ],
    )
