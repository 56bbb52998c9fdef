"""Mirror of ``snowflake.core.task.dagv1``: ``DAG``, ``DAGTask``, ``DAGOperation``, ``DAGRun``.

A DAG is built on the client (``with DAG(...) as dag:`` and ``>>`` between tasks) and
deployed whole to the control plane, which schedules it and runs it::

    with DAG("nightly", schedule=Cron("0 2 * * *", "UTC"), use_func_return_value=True) as dag:
        prep = DAGTask("prep", "SELECT 1")
        score = DAGTask("score", score_fn)  # a Python callable taking a Session
        prep >> score
    DAGOperation(Root(session).databases["ML"].schemas["PUBLIC"]).deploy(dag, mode=CreateMode.or_replace)

SQL definitions run on the control plane's SQL path. Python definitions are pickled with
cloudpickle (their own module by value, so a notebook's or test's function travels with its
helpers) and run in a subprocess of the control plane with a ``Session`` of their own; read a
predecessor's return value there with ``TaskContext(session).get_predecessor_return_value()``.
"""

from __future__ import annotations

import base64
import sys
import warnings
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from datetime import datetime, timedelta
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Union

import cloudpickle

from runbatch.core._common import CreateMode
from runbatch.core.exceptions import InvalidOperationError
from runbatch.core.task._procedure import StoredProcedureCall
from runbatch.core.task.cron import Cron
from runbatch.errors import UnsupportedError
from runbatch.identifiers import resolve_identifier
from runbatch.wire.dags import DagCreate, DagRunPublic, DagSchedule, DagTaskCreate, TaskRunPublic

if TYPE_CHECKING:
    from collections.abc import Iterator

    from runbatch.client import ControlPlaneClient
    from runbatch.core._root import SchemaResource
    from runbatch.snowpark.session import Session

__all__ = ["DAG", "DAGOperation", "DAGRun", "DAGTask", "DAGTaskBranch"]

_dag_context_stack: deque[DAG] = deque()

TaskLike = Union[
    "DAGTask", Iterable[Union["DAGTask", Callable[["Session"], Any]]], Callable[["Session"], Any]
]


def _get_current_dag() -> DAG | None:
    return _dag_context_stack[-1] if _dag_context_stack else None


def _convert_func_to_task(other: TaskLike) -> DAGTask | list[DAGTask]:
    if isinstance(other, DAGTask):
        return other
    if callable(other):
        return DAGTask(other.__name__, other)
    if isinstance(other, Iterable):
        return [t if isinstance(t, DAGTask) else DAGTask(t.__name__, t) for t in other]
    raise TypeError(f"Expect a DAGTAsk, a function, or a list of them. {type(other)} is provided.")


class DAG:
    """A graph of tasks with one schedule. Use it as a context manager to add tasks to it."""

    def __init__(
        self,
        name: str,
        *,
        schedule: Cron | timedelta | None = None,
        warehouse: str | None = None,
        user_task_managed_initial_warehouse_size: str | None = None,
        error_integration: str | None = None,
        comment: str | None = None,
        task_auto_retry_attempts: int | None = None,
        allow_overlapping_execution: bool | None = None,
        user_task_timeout_ms: int | None = None,
        suspend_task_after_num_failures: int | None = None,
        config: dict[str, Any] | None = None,
        session_parameters: dict[str, Any] | None = None,
        stage_location: str | None = None,
        imports: list[str | tuple[str, str]] | None = None,
        packages: list[str | ModuleType] | None = None,
        use_func_return_value: bool = False,
    ) -> None:
        self.name = name
        self.warehouse = warehouse
        self.comment = comment
        self.schedule = schedule
        self.error_integration = error_integration
        self.allow_overlapping_execution = allow_overlapping_execution
        self.user_task_timeout_ms = user_task_timeout_ms
        self.suspend_task_after_num_failures = suspend_task_after_num_failures
        self.config = config
        self.session_parameters = session_parameters
        self._tasks: dict[str, DAGTask] = {}
        self._task_list: list[DAGTask] | None = None
        self.stage_location = stage_location
        self.imports = imports
        self.packages = packages
        self.use_func_return_value = use_func_return_value
        self._finalizer_task: str | None = None
        self.task_auto_retry_attempts = task_auto_retry_attempts
        if user_task_managed_initial_warehouse_size is not None:
            warnings.warn(
                "Providing user_task_managed_initial_warehouse_size for a dummy root Task is deprecated and "
                "will be removed in the next major version. You can specify user_task_managed_initial_warehouse_size "
                "for the child Tasks instead.",
                category=DeprecationWarning,
                stacklevel=2,
            )

    def add_task(self, task: DAGTask) -> None:
        if task.dag is not self:
            raise ValueError("Cannot move a task to a different task graph")
        self._tasks[task.name] = task
        self._task_list = None

    def get_task(self, task_name: str) -> DAGTask | None:
        return self._tasks.get(task_name)

    def get_finalizer_task(self) -> DAGTask | None:
        return self._tasks.get(self._finalizer_task) if self._finalizer_task is not None else None

    @property
    def tasks(self) -> list[DAGTask]:
        if self._task_list is None:
            self._task_list = list(self._tasks.values())
        return self._task_list

    def __repr__(self) -> str:
        return f"<DAG: {self.name}>"

    def __contains__(self, task: DAGTask | str) -> bool:
        return (task.name if isinstance(task, DAGTask) else task) in self._tasks

    def __enter__(self) -> DAG:
        _dag_context_stack.append(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        _dag_context_stack.pop()


class DAGTask:
    """A child task of a DAG: SQL text, or a Python callable taking a ``Session``."""

    def __init__(
        self,
        name: str,
        definition: str | Callable[..., Any] | StoredProcedureCall,
        *,
        condition: str | None = None,
        warehouse: str | None = None,
        session_parameters: dict[str, Any] | None = None,
        user_task_managed_initial_warehouse_size: str | None = None,
        target_completion_interval: timedelta | None = None,
        serverless_task_min_statement_size: str | None = None,
        serverless_task_max_statement_size: str | None = None,
        user_task_timeout_ms: int | None = None,
        error_integration: str | None = None,
        comment: str | None = None,
        is_finalizer: bool | None = None,
        is_serverless: bool = False,
        dag: DAG | None = None,
    ) -> None:
        self.name = name
        self.definition = definition
        self.condition = condition
        self.session_parameters = session_parameters
        self.comment = comment
        self.user_task_managed_initial_warehouse_size = user_task_managed_initial_warehouse_size
        self.target_completion_interval = target_completion_interval
        self.serverless_task_min_statement_size = serverless_task_min_statement_size
        self.serverless_task_max_statement_size = serverless_task_max_statement_size
        self.user_task_timeout_ms = user_task_timeout_ms
        dag = dag or _get_current_dag()
        if dag is None:
            raise ValueError("Parameter 'dag' must be set when creating a DAGTask.")
        if is_serverless and warehouse is not None:
            raise ValueError("Warehouse was provided for a serverless task.")
        self.warehouse = dag.warehouse if (warehouse is None and not is_serverless) else warehouse
        if error_integration is not None:
            warnings.warn(
                "error_integration cannot be specified for a child Task. This argument will be removed "
                "in the next major version. Provide the error_integration for the DAG instead.",
                category=DeprecationWarning,
                stacklevel=2,
            )
        self._dag = dag
        self._is_finalizer = is_finalizer
        if is_finalizer:
            if dag._finalizer_task is None:
                dag._finalizer_task = self.name
            else:
                raise InvalidOperationError(
                    f"Finalizer task for this Dag {self.name} already exists named: {dag._finalizer_task}"
                )
        dag.add_task(self)
        self._predecessors: set[DAGTask] = set()

    @property
    def full_name(self) -> str:
        return f"{self.dag.name}${self.name}"

    @property
    def dag(self) -> DAG:
        return self._dag

    def _same_dag_tasks(self, other: TaskLike, finalizer_problem: str) -> list[DAGTask]:
        """``other`` as tasks of this DAG that may be linked to this one (Snowflake's messages)."""
        converted = _convert_func_to_task(other)
        tasks = [converted] if isinstance(converted, DAGTask) else converted
        for t in tasks:
            if t.dag is not self.dag:
                raise InvalidOperationError(f"Task {t.name} belongs to a different task graph")
            if t._is_finalizer:
                raise InvalidOperationError(f"Finalizer task {t.name} {finalizer_problem}")
        return tasks

    def add_predecessors(self, other: TaskLike) -> None:
        if self._is_finalizer:
            raise InvalidOperationError(f"Finalizer task {self.name} cannot have any predecessors")
        self._predecessors.update(self._same_dag_tasks(other, "cannot be predecessor of any task"))

    def add_successors(self, other: TaskLike) -> None:
        if self._is_finalizer:
            raise InvalidOperationError(f"Finalizer task {self.name} cannot have any successors")
        for t in self._same_dag_tasks(other, "cannot have any predecessors"):
            t.add_predecessors(self)

    @property
    def predecessors(self) -> set[DAGTask]:
        return self._predecessors

    def __repr__(self) -> str:
        return f"<DAGTask: {self.name}>"

    def __lshift__(self, other: TaskLike) -> DAGTask | list[DAGTask]:
        """``task1 << task2``: task2 runs before task1."""
        if self._is_finalizer:
            raise InvalidOperationError(f"Finalizer task {self.name} cannot have any predecessors")
        tasks = _convert_func_to_task(other)
        self.add_predecessors(tasks)
        return tasks

    def __rshift__(self, other: TaskLike) -> DAGTask | list[DAGTask]:
        """``task1 >> task2``: task2 runs after task1."""
        if self._is_finalizer:
            raise InvalidOperationError(f"Finalizer task {self.name} cannot have any successors")
        tasks = _convert_func_to_task(other)
        self.add_successors(tasks)
        return tasks

    def _summary(self) -> dict[str, Any] | None:
        """What the task does, shown beside it in the DAG's description (overridden by batch tasks)."""
        return None


class DAGTaskBranch(DAGTask):
    """Snowflake's branching task: not supported yet (its successors would need task conditions)."""

    def __init__(self, name: str, *args: Any, **kwargs: Any) -> None:
        raise UnsupportedError(
            f"DAGTaskBranch {name}: branching tasks are not supported yet. Run every branch and let each "
            "task check whether it has work to do."
        )


def _installed(module: ModuleType) -> bool:
    path = getattr(module, "__file__", None) or ""
    return "site-packages" in path or "dist-packages" in path


@contextmanager
def _by_value(func: Any) -> Iterator[None]:
    """While open, the callable's own module pickles by value, unless runbatch or installed: the
    control plane cannot import a notebook's, a script's or a test's module by name."""
    name = getattr(func, "__module__", None) or type(func).__module__
    module = sys.modules.get(name)
    by_value = (
        module is not None
        and name != "__main__"
        and name.split(".")[0] != "runbatch"
        and not _installed(module)
    )
    if by_value:
        assert module is not None
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        if by_value:
            assert module is not None
            cloudpickle.unregister_pickle_by_value(module)


def _pickled(func: Any) -> str:
    with _by_value(func):
        return base64.b64encode(cloudpickle.dumps(func)).decode("ascii")


def _schedule(schedule: Cron | timedelta | None) -> DagSchedule | None:
    if schedule is None:
        return None
    if isinstance(schedule, timedelta):
        return DagSchedule(interval_s=schedule.total_seconds())
    if isinstance(schedule, tuple) and len(schedule) == 2:
        return DagSchedule(cron=schedule[0], timezone=schedule[1])
    raise TypeError(f"A DAG's schedule is a Cron or a timedelta, not {type(schedule).__name__}.")


def _topological(dag: DAG) -> list[DAGTask]:
    """Predecessors first; Snowflake's message when the graph has a cycle."""
    remaining = {t: len(t.predecessors) for t in dag.tasks}
    followers: dict[DAGTask, list[DAGTask]] = {t: [] for t in dag.tasks}
    for task in dag.tasks:
        for pred in task.predecessors:
            followers.setdefault(pred, []).append(task)
    ready = deque(t for t in dag.tasks if remaining[t] == 0)
    ordered: list[DAGTask] = []
    while ready:
        task = ready.popleft()
        ordered.append(task)
        for follower in followers.get(task, []):
            remaining[follower] -= 1
            if remaining[follower] == 0:
                ready.append(follower)
    if len(ordered) != len(dag.tasks):
        raise ValueError("There is a cycle in the task graph.")
    return ordered


def _task_body(task: DAGTask) -> DagTaskCreate:
    name = resolve_identifier(task.name)
    if task.condition is not None:
        raise UnsupportedError(
            f"Task {task.name} has condition={task.condition!r}: task conditions (and DAGTaskBranch) are not "
            "supported yet. Make the task check what it needs and return early instead."
        )
    definition = task.definition
    sql: str | None = None
    python: str | None = None
    if isinstance(definition, str):
        sql = definition
    elif isinstance(definition, StoredProcedureCall):
        python = _pickled(definition.func)
    elif callable(definition):
        python = _pickled(definition)
    else:
        raise TypeError(
            f"Task {task.name}'s definition is a {type(definition).__name__}; use SQL text, a callable taking a "
            "Session, or a StoredProcedureCall."
        )
    return DagTaskCreate(
        name=name,
        kind="sql" if sql is not None else "python",
        sql=sql,
        python=python,
        predecessors=sorted(resolve_identifier(p.name) for p in task.predecessors),
        is_finalizer=bool(task._is_finalizer),
        comment=task.comment,
        warehouse=task.warehouse,
        user_task_timeout_ms=task.user_task_timeout_ms,
        session_parameters=task.session_parameters,
        summary=task._summary(),
    )


def _dag_body(dag: DAG, mode: CreateMode) -> DagCreate:
    if dag.error_integration is not None:
        raise UnsupportedError(
            f"DAG {dag.name}: error_integration (failure notifications) is not supported yet; watch the runs with "
            "DAGOperation.get_complete_dag_runs instead."
        )
    if dag.task_auto_retry_attempts:
        raise UnsupportedError(
            f"DAG {dag.name}: task_auto_retry_attempts is not supported yet; a failed run stays failed until the "
            "next one."
        )
    return DagCreate(
        name=resolve_identifier(dag.name),
        mode=mode.value,
        schedule=_schedule(dag.schedule),
        warehouse=dag.warehouse,
        comment=dag.comment,
        allow_overlapping_execution=bool(dag.allow_overlapping_execution),
        user_task_timeout_ms=dag.user_task_timeout_ms,
        suspend_task_after_num_failures=dag.suspend_task_after_num_failures,
        config=dag.config,
        session_parameters=dag.session_parameters,
        use_func_return_value=dag.use_func_return_value,
        tasks=[_task_body(t) for t in _topological(dag)],
    )


class DAGRun:
    """One run of a DAG, with Snowflake's fields; ``task_runs`` (each task's outcome) is runbatch's."""

    dag_name: str
    database_name: str
    schema_name: str
    state: str
    first_error_task_name: str | None
    first_error_code: int | None
    first_error_message: str | None
    scheduled_time: datetime | None
    query_start_time: datetime | None
    next_scheduled_time: datetime | None
    run_id: int
    graph_version: int
    # runbatch's
    completed_time: datetime | None
    trigger: str | None
    missed_slots: int
    task_runs: list[TaskRunPublic]

    @classmethod
    def _from_public(cls, run: DagRunPublic) -> DAGRun:
        made = cls()
        made.dag_name = run.dag_name
        made.database_name = run.database_name
        made.schema_name = run.schema_name
        made.state = run.state
        made.first_error_task_name = run.first_error_task_name
        made.first_error_code = run.first_error_code
        made.first_error_message = run.first_error_message
        made.scheduled_time = run.scheduled_time
        made.query_start_time = run.query_start_time
        made.next_scheduled_time = run.next_scheduled_time
        made.run_id = run.run_id
        made.graph_version = run.graph_version
        made.completed_time = run.completed_time
        made.trigger = run.trigger
        made.missed_slots = run.missed_slots
        made.task_runs = list(run.tasks)
        return made

    @classmethod
    def _next(cls, database: str, schema: str, dag: str, at: datetime, graph_version: int) -> DAGRun:
        """The run the schedule will start next, as CURRENT_TASK_GRAPHS lists it."""
        made = cls()
        made.dag_name, made.database_name, made.schema_name = dag, database, schema
        made.state = "SCHEDULED"
        made.first_error_task_name = made.first_error_message = None
        made.first_error_code = None
        made.scheduled_time = made.next_scheduled_time = at
        made.query_start_time = made.completed_time = None
        made.run_id = int(at.timestamp() * 1000)
        made.graph_version = graph_version
        made.trigger, made.missed_slots, made.task_runs = "SCHEDULE", 0, []
        return made

    def task_run(self, name: str) -> TaskRunPublic | None:
        """The outcome of one task of this run (by its name in the DAG), or None if it did not run."""
        wanted = resolve_identifier(name)
        return next((t for t in self.task_runs if t.name == wanted), None)

    def __str__(self) -> str:
        return (
            f"run_id: {self.run_id}, dag_name: {self.dag_name}, database_name: {self.database_name}, schema_name:\n"
            f"{self.schema_name}, state: {self.state}, first_error_task_name: {self.first_error_task_name},\n"
            f"first_error_code: {self.first_error_code}, first_error_message: {self.first_error_message},\n"
            f"scheduled_time: {self.scheduled_time}, query_start_time: {self.query_start_time},\n"
            f"next_scheduled_time: {self.next_scheduled_time}, graph_version: {self.graph_version}\n"
        )

    def __repr__(self) -> str:
        return f"<DAGRun {self.dag_name} run_id={self.run_id} state={self.state}>"


class DAGOperation:
    """Deploy, run, inspect and drop DAGs in one schema."""

    def __init__(self, schema: SchemaResource) -> None:
        self.schema = schema

    @property
    def _client(self) -> ControlPlaneClient:
        return self.schema.root._client

    def _key(self, dag: DAG | str) -> tuple[str, str, str]:
        name = dag.name if isinstance(dag, DAG) else dag
        return self.schema.database.name, self.schema.name, resolve_identifier(name)

    def iter_dags(self, *, like: str = "%") -> list[str]:
        """Names of the DAGs in this schema; ``like`` is a case-insensitive SQL pattern (% and _)."""
        return [
            d.name for d in self._client.list_dags(self.schema.database.name, self.schema.name, like=like)
        ]

    def delete(self, dag: DAG | str) -> None:
        warnings.warn("The delete method is deprecated; use drop instead.", DeprecationWarning, stacklevel=2)
        self.drop(dag)

    def drop(self, dag: DAG | str, *, drop_finalizer: bool = False) -> None:
        """Remove the DAG, all its tasks (the finalizer too) and its run history; a running run is stopped."""
        self._client.drop_dag(*self._key(dag), if_exists=True)

    def deploy(self, dag: DAG, mode: CreateMode | str = CreateMode.error_if_exists) -> None:
        """Create the DAG with all its tasks; a scheduled DAG starts running on its schedule.

        ``CreateMode.error_if_exists`` raises ``ConflictError`` if it exists; ``or_replace`` replaces it
        (keeping its run history); ``if_not_exists`` leaves an existing one as it is.
        """
        body = _dag_body(dag, CreateMode.of(mode))
        self._client.deploy_dag(self.schema.database.name, self.schema.name, body)

    def run(self, dag: DAG | str, *, retry_last: bool = False) -> DAGRun:
        """Run the DAG once now (resuming its schedule when it has one); returns the run (runbatch's)."""
        if retry_last:
            raise UnsupportedError(
                "run(retry_last=True) is not supported yet; run() runs the whole DAG again."
            )
        key = self._key(dag)
        schedule = dag.schedule if isinstance(dag, DAG) else self._client.get_dag(*key).schedule
        if schedule is not None:
            self._client.resume_dag(*key)
        return DAGRun._from_public(self._client.execute_dag(*key))

    def get_complete_dag_runs(self, dag: DAG | str, *, error_only: bool = True) -> list[DAGRun]:
        """Runs that ended within the last 60 minutes, newest first (only failed ones with ``error_only``)."""
        runs = self._client.list_dag_runs(
            *self._key(dag), current=False, error_only=error_only, completed_within_s=3600, limit=0
        )
        return [DAGRun._from_public(r) for r in runs]

    def get_current_dag_runs(self, dag: DAG | str) -> list[DAGRun]:
        """Runs scheduled or executing now, and the next scheduled one."""
        key = self._key(dag)
        runs = [DAGRun._from_public(r) for r in self._client.list_dag_runs(*key, current=True, limit=0)]
        described = self._client.get_dag(*key)
        if described.state == "started" and described.next_scheduled_time is not None:
            runs.append(
                DAGRun._next(
                    described.database_name,
                    described.schema_name,
                    described.name,
                    described.next_scheduled_time,
                    described.graph_version,
                )
            )
        return runs

    def get_dag_runs(self, dag: DAG | str, *, limit: int = 100) -> list[DAGRun]:
        """Every kept run, newest first (runbatch's; history is kept 30 days)."""
        return [DAGRun._from_public(r) for r in self._client.list_dag_runs(*self._key(dag), limit=limit)]
