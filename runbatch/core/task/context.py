"""``TaskContext(session)``, as ``snowflake.core.task.context.TaskContext``.

Inside a Python task of a DAG run, it reads the return values of the task's predecessors
(our ``SYSTEM$GET_PREDECESSOR_RETURN_VALUE``) and sets the task's own return value (our
``SYSTEM$SET_RETURN_VALUE``). The task's process is started by the control plane with its
run's context (``runbatch.core.task._runner``); outside such a process every call fails as
Snowflake's system functions do outside a task.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import qualified, resolve_identifier
from runbatch.wire.dags import TaskRunContext

if TYPE_CHECKING:
    from runbatch.snowpark.session import Session

__all__ = ["TaskContext"]


class _TaskRun:
    """The task this process runs: its context in, its return value and jobs out."""

    def __init__(self, context: TaskRunContext) -> None:
        self.context = context
        self.return_value: str | None = None
        self.job_ids: list[str] = []
        self.lock = threading.Lock()


_current: _TaskRun | None = None


def _activate(context: TaskRunContext) -> _TaskRun:
    global _current
    _current = _TaskRun(context)
    return _current


def _require(function: str) -> _TaskRun:
    if _current is None:
        raise InvalidArgumentError(
            f"Function {function} must be called from within a task: TaskContext works inside a Python task of "
            "a DAG run (runbatch.core.task.dagv1), not in a notebook or script."
        )
    return _current


def _record_job(job_id: str) -> None:
    """Note a batch inference job this task started, for the run history (a no-op outside a task)."""
    if _current is not None:
        with _current.lock:
            _current.job_ids.append(job_id)


class TaskContext:
    """The context of the task this code runs in."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def set_return_value(self, value: Any) -> None:
        """Set this task's return value (converted to ``str``), which its successors can read."""
        run = _require("SYSTEM$SET_RETURN_VALUE")
        with run.lock:
            run.return_value = str(value)

    def get_predecessor_return_value(self, task_name: str | None = None) -> str:
        """The return value of a predecessor task (the only one when ``task_name`` is omitted).

        As Snowflake's, a predecessor that set no value gives ``str(None)``, i.e. ``"None"``.
        """
        run = _require("SYSTEM$GET_PREDECESSOR_RETURN_VALUE")
        context = run.context
        predecessors = context.predecessors
        if task_name is None:
            if len(predecessors) != 1:
                listed = ", ".join(sorted(predecessors)) or "none"
                raise InvalidArgumentError(
                    f"Task {context.task} has {len(predecessors)} predecessors ({listed}): name the one whose "
                    "return value you want, e.g. get_predecessor_return_value('TASK_NAME')."
                )
            return str(next(iter(predecessors.values())))
        name = resolve_identifier(task_name)
        prefix = f"{context.dag}$"
        if name.startswith(prefix):
            name = name[len(prefix) :]
        if name not in predecessors:
            listed = ", ".join(sorted(predecessors)) or "none"
            raise InvalidArgumentError(
                f"{task_name} is not a predecessor of task {context.task}; its predecessors are: {listed}."
            )
        return str(predecessors[name])

    def get_current_task_name(self) -> str:
        """The running task's full name, ``DB.SCHEMA.<DAG>$<task>``."""
        context = _require("SYSTEM$CURRENT_USER_TASK_NAME").context
        return f"{qualified(context.database, context.schema_)}.{qualified(f'{context.dag}${context.task}')}"

    def get_current_task_short_name(self) -> str:
        """The task's name within its DAG (without the ``<DAG>$`` prefix)."""
        return _require("SYSTEM$CURRENT_USER_TASK_NAME").context.task

    def get_current_root_task_name(self) -> str:
        context = _require("SYSTEM$TASK_RUNTIME_INFO").context
        return qualified(context.database, context.schema_, context.dag)

    def get_current_root_task_uuid(self) -> str:
        return str(_require("SYSTEM$TASK_RUNTIME_INFO").context.dag_id)

    def get_task_graph_config(self) -> dict[str, Any] | None:
        config = _require("SYSTEM$GET_TASK_GRAPH_CONFIG").context.config
        return dict(config) if config else None

    def get_task_graph_config_property(self, property_name: str) -> Any | None:
        config = self.get_task_graph_config()
        return config.get(property_name) if config else None

    def get_current_task_graph_original_schedule(self) -> datetime:
        return _require("SYSTEM$TASK_RUNTIME_INFO").context.scheduled_time

    def get_current_task_graph_run_group_id(self) -> str:
        return str(_require("SYSTEM$TASK_RUNTIME_INFO").context.run_id)

    def get_last_successful_task_graph_original_schedule(self) -> datetime | None:
        return _require("SYSTEM$TASK_RUNTIME_INFO").context.last_successful_scheduled_time

    def get_last_successful_task_graph_run_group_id(self) -> str | None:
        run_id = _require("SYSTEM$TASK_RUNTIME_INFO").context.last_successful_run_id
        return None if run_id is None else str(run_id)

    def get_runtime_info(self, property_name: str) -> str | datetime | None:
        """One of Snowflake's SYSTEM$TASK_RUNTIME_INFO properties."""
        if not property_name:
            raise ValueError("`property_name` must be an non-empty str.")
        getters: dict[str, Callable[[], str | datetime | None]] = {
            "CURRENT_ROOT_TASK_NAME": self.get_current_root_task_name,
            "CURRENT_ROOT_TASK_UUID": self.get_current_root_task_uuid,
            "CURRENT_TASK_GRAPH_ORIGINAL_SCHEDULED_TIMESTAMP": self.get_current_task_graph_original_schedule,
            "CURRENT_TASK_GRAPH_RUN_GROUP_ID": self.get_current_task_graph_run_group_id,
            "LAST_SUCCESSFUL_TASK_GRAPH_ORIGINAL_SCHEDULED_TIMESTAMP": (
                self.get_last_successful_task_graph_original_schedule
            ),
            "LAST_SUCCESSFUL_TASK_GRAPH_RUN_GROUP_ID": self.get_last_successful_task_graph_run_group_id,
        }
        getter = getters.get(property_name.upper())
        if getter is None:
            raise InvalidArgumentError(
                f"Unknown task runtime property {property_name!r}; known: {', '.join(sorted(getters))}."
            )
        return getter()
