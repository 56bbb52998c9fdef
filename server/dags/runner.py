"""Execute claimed DAG runs: tasks in dependency order, independent ones side by side.

A task starts when every predecessor succeeded; a failed task's successors never start (they
leave no task run, as in Snowflake), and the run fails with the first error. A finalizer task
runs last whatever happened before it. SQL tasks go through the control plane's SQL path,
in-process; Python tasks run as subprocesses (``server.dags.python_tasks``).

``SYSTEM$GET_PREDECESSOR_RETURN_VALUE(['name'])`` in a SQL task is replaced by the value as a
string literal before the statement runs, and a task that is just ``CALL|SELECT
SYSTEM$SET_RETURN_VALUE('...')`` sets its return value.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from runbatch.errors import InvalidArgumentError, RunbatchError
from runbatch.identifiers import resolve_identifier
from runbatch.wire.dags import TaskRunContext
from runbatch.wire.resources import is_query
from server.auth.tokens import ROLE_ADMIN, Principal
from server.control_plane import ControlPlane
from server.dags.python_tasks import Stop, TaskOutcome, TaskProcesses, run_python_task
from server.dags.service import DEFAULT_FAILURES_BEFORE_SUSPEND, consecutive_failures, suspend_dag
from server.dags.states import RunState, TaskRunState, transition_run
from server.db.tables import DagRow, DagRunRow, DagTaskRunRow, utcnow
from server.sql.executor import execute_sql
from server.sql.results import open_query
from server.sql.unload import is_copy, plan_unload

__all__ = ["RunExecutor", "run_sql_task"]

log = logging.getLogger("runbatch.server.dags")

_PARALLEL_TASKS = 4
_RUNS_PER_PROCESS = 8
# Snowflake's USER_TASK_TIMEOUT_MS default: one hour.
_DEFAULT_TIMEOUT_MS = 3_600_000

_GET_VALUE = re.compile(
    r"SYSTEM\$GET_PREDECESSOR_RETURN_VALUE\s*\(\s*(?:'((?:[^']|'')*)')?\s*\)", re.IGNORECASE
)
_SET_VALUE = re.compile(
    r"^\s*(?:CALL|SELECT)\s+SYSTEM\$SET_RETURN_VALUE\s*\(\s*'((?:[^']|'')*)'\s*\)\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class _Task:
    name: str
    kind: str
    sql: str | None
    python: bytes | None
    predecessors: tuple[str, ...]
    is_finalizer: bool
    timeout_ms: int | None


@dataclass(frozen=True)
class _Snapshot:
    """What a run needs of its DAG, read once when it starts (a redeploy does not change a run)."""

    dag_id: uuid.UUID
    dag: str
    database: str
    schema: str
    owner: str
    scheduled_at: datetime
    graph_version: int
    config: dict[str, object] | None
    use_func_return_value: bool
    timeout_ms: int | None
    failures_before_suspend: int
    last_success: tuple[datetime, uuid.UUID] | None
    tasks: tuple[_Task, ...]


def _literal(value: str | None) -> str:
    return "NULL" if value is None else "'" + value.replace("'", "''") + "'"


def _with_predecessor_values(sql: str, dag: str, values: dict[str, str | None]) -> str:
    def replace(match: re.Match[str]) -> str:
        raw = match.group(1)
        if raw is None:
            if len(values) != 1:
                raise InvalidArgumentError(
                    f"SYSTEM$GET_PREDECESSOR_RETURN_VALUE() without a name needs exactly one predecessor; this "
                    f"task has {len(values)}. Name one, e.g. SYSTEM$GET_PREDECESSOR_RETURN_VALUE('TASK')."
                )
            return _literal(next(iter(values.values())))
        name = resolve_identifier(raw.replace("''", "'"))
        if name.startswith(f"{dag}$"):
            name = name[len(dag) + 1 :]
        if name not in values:
            raise InvalidArgumentError(f"{raw} is not a predecessor of this task.")
        return _literal(values[name])

    return _GET_VALUE.sub(replace, sql)


def run_sql_task(
    cp: ControlPlane,
    sql: str,
    *,
    dag: str,
    database: str,
    schema: str,
    owner: str,
    values: dict[str, str | None],
) -> TaskOutcome:
    """Run one SQL task's statement as the DAG's owner in the DAG's database and schema."""
    try:
        text = _with_predecessor_values(sql, dag, values)
        setter = _SET_VALUE.match(text)
        if setter is not None:
            return TaskOutcome(True, return_value=setter.group(1).replace("''", "'"))
        if is_query(text):
            with cp.read_sessionmaker() as session:
                result = open_query(session, cp.storage, cp.secrets, text, database=database, schema=schema)
            try:
                rows = sum(batch.num_rows for batch in result.reader)
            finally:
                result.close()
            return TaskOutcome(True, log=f"{rows} rows")
        if is_copy(text):
            with cp.read_sessionmaker() as session:
                unload = plan_unload(session, cp.storage, cp.secrets, text, database=database, schema=schema)
            unloaded = unload.run()
            return TaskOutcome(True, log=" ".join(str(v) for v in unloaded.rows[0]) if unloaded.rows else "")
        with cp.sessionmaker() as session:
            principal = Principal(name=owner, role=ROLE_ADMIN)
            execution = execute_sql(
                session, cp.storage, cp.secrets, principal, text, database=database, schema=schema
            )
            session.commit()
        for action in execution.after_commit:
            action()
        return TaskOutcome(True, log=" ".join(str(r[0]) for r in execution.result.rows[:1]))
    except RunbatchError as exc:
        return TaskOutcome(False, error=exc.message)
    except Exception as exc:
        log.exception("SQL task of %s failed unexpectedly", dag)
        return TaskOutcome(False, error=f"{type(exc).__name__}: {exc}")


class _RunExecution:
    def __init__(
        self, cp: ControlPlane, run_id: uuid.UUID, owner: str, stop: Stop, processes: TaskProcesses
    ) -> None:
        self.cp = cp
        self.run_id = run_id
        self.owner = owner
        self.stop = stop
        self.processes = processes

    def _load(self) -> _Snapshot | None:
        with self.cp.sessionmaker() as session:
            run = session.get(DagRunRow, self.run_id)
            if run is None or run.state != RunState.EXECUTING or run.owner != self.owner:
                return None
            dag = run.dag
            if run.graph_version != dag.graph_version:
                run.graph_version = dag.graph_version  # redeployed between firing and starting
            last = session.execute(
                select(DagRunRow.scheduled_at, DagRunRow.id)
                .where(DagRunRow.dag_id == dag.id, DagRunRow.state == RunState.SUCCEEDED)
                .order_by(DagRunRow.scheduled_at.desc())
                .limit(1)
            ).first()
            failures = dag.suspend_task_after_num_failures
            snapshot = _Snapshot(
                dag_id=dag.id,
                dag=dag.name,
                database=dag.schema.database.name,
                schema=dag.schema.name,
                owner=dag.owner,
                scheduled_at=run.scheduled_at,
                graph_version=dag.graph_version,
                config=dag.config,
                use_func_return_value=dag.use_func_return_value,
                timeout_ms=dag.user_task_timeout_ms,
                failures_before_suspend=DEFAULT_FAILURES_BEFORE_SUSPEND if failures is None else failures,
                last_success=None if last is None else (last[0], last[1]),
                tasks=tuple(
                    _Task(
                        name=t.name,
                        kind=t.kind,
                        sql=t.sql,
                        python=t.python,
                        predecessors=tuple(t.predecessors),
                        is_finalizer=t.is_finalizer,
                        timeout_ms=t.user_task_timeout_ms,
                    )
                    for t in dag.tasks
                ),
            )
            session.commit()
        return snapshot

    def execute(self) -> None:
        snapshot = self._load()
        if snapshot is None:
            return
        outcomes: dict[str, TaskOutcome] = {}
        failures: list[tuple[float, str, str]] = []
        pending = [t for t in snapshot.tasks if not t.is_finalizer]
        with ThreadPoolExecutor(_PARALLEL_TASKS, thread_name_prefix="runbatch-task") as pool:
            running: dict[Future[TaskOutcome], _Task] = {}
            while True:
                if not self.stop.event.is_set():
                    for task in list(pending):
                        if all(p in outcomes and outcomes[p].succeeded for p in task.predecessors):
                            pending.remove(task)
                            values = {p: outcomes[p].return_value for p in task.predecessors}
                            running[pool.submit(self._task, snapshot, task, values)] = task
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    task = running.pop(future)
                    outcome = future.result()
                    outcomes[task.name] = outcome
                    if not outcome.succeeded:
                        failures.append((time.monotonic(), task.name, outcome.error or "failed"))
            finalizer = next((t for t in snapshot.tasks if t.is_finalizer), None)
            if finalizer is not None and not self.stop.event.is_set():
                outcome = self._task(snapshot, finalizer, {})
                if not outcome.succeeded:
                    failures.append((time.monotonic(), finalizer.name, outcome.error or "failed"))
        self._finish(snapshot, failures)

    def _task(self, snapshot: _Snapshot, task: _Task, values: dict[str, str | None]) -> TaskOutcome:
        try:
            with self.cp.sessionmaker() as session:
                row = DagTaskRunRow(
                    run_id=self.run_id,
                    name=task.name,
                    state=TaskRunState.EXECUTING,
                    started_at=utcnow(),
                    job_ids=[],
                    log="",
                )
                session.add(row)
                session.commit()
                row_id = row.id
        except IntegrityError:
            self.stop.set("The task graph was dropped while the run was executing.")
            return TaskOutcome(False, error=self.stop.reason)
        try:
            outcome = self._outcome(snapshot, task, values)
        except Exception as exc:
            log.exception("task %s$%s failed unexpectedly", snapshot.dag, task.name)
            outcome = TaskOutcome(False, error=f"{type(exc).__name__}: {exc}")
        with self.cp.sessionmaker() as session:
            session.execute(
                update(DagTaskRunRow)
                .where(DagTaskRunRow.id == row_id)
                .values(
                    state=TaskRunState.SUCCEEDED if outcome.succeeded else TaskRunState.FAILED,
                    return_value=outcome.return_value,
                    error_message=outcome.error,
                    completed_at=utcnow(),
                    job_ids=outcome.job_ids,
                    log=outcome.log,
                )
            )
            session.commit()
        return outcome

    def _outcome(self, snapshot: _Snapshot, task: _Task, values: dict[str, str | None]) -> TaskOutcome:
        if task.kind == "sql":
            assert task.sql is not None
            return run_sql_task(
                self.cp,
                task.sql,
                dag=snapshot.dag,
                database=snapshot.database,
                schema=snapshot.schema,
                owner=snapshot.owner,
                values=values,
            )
        assert task.python is not None
        context = TaskRunContext(
            database=snapshot.database,
            schema_=snapshot.schema,
            dag=snapshot.dag,
            dag_id=snapshot.dag_id,
            task=task.name,
            run_id=self.run_id,
            scheduled_time=snapshot.scheduled_at,
            graph_version=snapshot.graph_version,
            predecessors=values,
            config=snapshot.config,
            use_func_return_value=snapshot.use_func_return_value,
            last_successful_scheduled_time=snapshot.last_success[0] if snapshot.last_success else None,
            last_successful_run_id=snapshot.last_success[1] if snapshot.last_success else None,
        )
        return run_python_task(
            self.cp,
            payload=task.python,
            context=context,
            owner=snapshot.owner,
            timeout_ms=task.timeout_ms or snapshot.timeout_ms or _DEFAULT_TIMEOUT_MS,
            stop=self.stop,
            processes=self.processes,
        )

    def _finish(self, snapshot: _Snapshot, failures: list[tuple[float, str, str]]) -> None:
        first = min(failures) if failures else None
        if self.stop.event.is_set():
            state = RunState.CANCELLED
            error_task, error = (first[1], first[2]) if first else (None, self.stop.reason)
        elif first is not None:
            state, error_task, error = RunState.FAILED, first[1], first[2]
        else:
            state, error_task, error = RunState.SUCCEEDED, None, None
        with self.cp.sessionmaker() as session:
            ended = transition_run(
                session,
                self.run_id,
                from_={RunState.EXECUTING},
                to=state,
                held_by=self.owner,
                completed_at=utcnow(),
                first_error_task_name=None if error_task is None else f"{snapshot.dag}${error_task}",
                first_error_message=error,
            )
            limit = snapshot.failures_before_suspend
            if ended and state == RunState.FAILED and limit > 0:
                if consecutive_failures(session, snapshot.dag_id, limit) >= limit:
                    dag = session.get(DagRow, snapshot.dag_id)
                    if dag is not None:
                        suspend_dag(
                            dag,
                            f"Suspended after {limit} failed runs in a row (SUSPEND_TASK_AFTER_NUM_FAILURES); "
                            "resume it when the cause is fixed.",
                        )
                        log.warning("task graph %s suspended after %d failed runs", snapshot.dag, limit)
            session.commit()


class RunExecutor:
    """The runs this process claimed: executed on threads, kept alive by heartbeats, stopped on request."""

    def __init__(self, cp: ControlPlane, owner: str) -> None:
        self.cp = cp
        self.owner = owner
        self._pool = ThreadPoolExecutor(_RUNS_PER_PROCESS, thread_name_prefix="runbatch-dag")
        self._stops: dict[uuid.UUID, Stop] = {}
        self._lock = threading.Lock()
        self._beat_at = 0.0
        self.processes = TaskProcesses()

    def submit(self, run_id: uuid.UUID) -> None:
        stop = Stop()
        with self._lock:
            self._stops[run_id] = stop
        self._pool.submit(self._execute, run_id, stop)

    def active(self) -> list[uuid.UUID]:
        with self._lock:
            return list(self._stops)

    def _execute(self, run_id: uuid.UUID, stop: Stop) -> None:
        try:
            _RunExecution(self.cp, run_id, self.owner, stop, self.processes).execute()
        except Exception as exc:
            log.exception("DAG run %s failed unexpectedly", run_id)
            try:
                with self.cp.sessionmaker() as session:
                    transition_run(
                        session,
                        run_id,
                        from_={RunState.EXECUTING},
                        to=RunState.FAILED,
                        held_by=self.owner,
                        completed_at=utcnow(),
                        first_error_message=f"Internal error while running the task graph: {exc}",
                    )
                    session.commit()
            except Exception:
                log.exception("could not record the failure of DAG run %s", run_id)
        finally:
            with self._lock:
                self._stops.pop(run_id, None)

    def heartbeat(self, now: datetime, every_s: float) -> None:
        """Mark this process's runs alive; stop those that were dropped or taken over meanwhile."""
        ids = self.active()
        if not ids or time.monotonic() - self._beat_at < every_s:
            return
        self._beat_at = time.monotonic()
        with self.cp.sessionmaker() as session:
            mine = [
                DagRunRow.id.in_(ids),
                DagRunRow.state == RunState.EXECUTING,
                DagRunRow.owner == self.owner,
            ]
            session.execute(update(DagRunRow).where(*mine).values(heartbeat_at=now))
            alive = set(session.scalars(select(DagRunRow.id).where(*mine)))
            session.commit()
        with self._lock:
            for run_id in ids:
                stop = self._stops.get(run_id)
                if stop is not None and run_id not in alive:
                    stop.set("The run was dropped, or failed by a scheduler after its heartbeat lapsed.")

    def stop(self) -> None:
        with self._lock:
            stops = list(self._stops.values())
        for stop in stops:
            stop.set("The control plane stopped while the run was executing.")
        self._pool.shutdown(wait=True, cancel_futures=False)
        self.processes.close()
