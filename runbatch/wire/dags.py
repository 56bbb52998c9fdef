"""Task graphs (DAGs), their tasks and their runs on the wire.

A DAG is deployed whole: its schedule and every task, each either SQL text or a Python
callable serialized with cloudpickle (base64). Runs carry Snowflake's ``DAGRun`` fields plus
each task's outcome.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

__all__ = [
    "DAG_RUN_STATES",
    "CreateModeName",
    "DagCreate",
    "DagPublic",
    "DagRunPublic",
    "DagSchedule",
    "DagTaskCreate",
    "DagTaskPublic",
    "TaskRunContext",
    "TaskRunPublic",
    "TaskRunResult",
]

# Snowflake's graph run states, plus SKIPPED for a slot that found the previous run still executing.
DAG_RUN_STATES = ("SCHEDULED", "EXECUTING", "SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED")

CreateModeName = Literal["errorIfExists", "orReplace", "ifNotExists"]


class DagSchedule(BaseModel):
    """Either a cron expression in a time zone, or a fixed interval."""

    cron: str | None = Field(default=None, description="Five-field cron expression")
    timezone: str | None = Field(default=None, description="IANA time zone of the cron expression")
    interval_s: float | None = Field(default=None, gt=0, description="Seconds between runs")

    @model_validator(mode="after")
    def _one_kind(self) -> DagSchedule:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("A schedule has either cron (with timezone) or interval_s.")
        if self.cron is not None and not self.timezone:
            raise ValueError("A cron schedule needs a timezone, e.g. 'UTC'.")
        return self


class DagTaskCreate(BaseModel):
    name: str = Field(description="Resolved task name, without the DAG prefix")
    kind: Literal["sql", "python"]
    sql: str | None = Field(default=None, description="SQL text (kind sql)")
    python: str | None = Field(
        default=None, description="base64 of a cloudpickle'd callable taking a Session (kind python)"
    )
    predecessors: list[str] = Field(default_factory=list, description="Resolved names of predecessor tasks")
    is_finalizer: bool = False
    comment: str | None = None
    warehouse: str | None = None
    user_task_timeout_ms: int | None = Field(default=None, gt=0)
    session_parameters: dict[str, Any] | None = None
    summary: dict[str, Any] | None = Field(
        default=None, description="What the task does, for display (e.g. a batch inference task's model)"
    )

    @model_validator(mode="after")
    def _definition(self) -> DagTaskCreate:
        if self.kind == "sql" and not self.sql:
            raise ValueError(f"Task {self.name}: a SQL task needs its SQL text.")
        if self.kind == "python" and not self.python:
            raise ValueError(f"Task {self.name}: a Python task needs its serialized callable.")
        return self


class DagCreate(BaseModel):
    name: str = Field(description="Resolved DAG (root task) name")
    mode: CreateModeName = "errorIfExists"
    schedule: DagSchedule | None = None
    warehouse: str | None = None
    comment: str | None = None
    allow_overlapping_execution: bool = False
    user_task_timeout_ms: int | None = Field(default=None, gt=0)
    suspend_task_after_num_failures: int | None = Field(default=None, ge=0)
    config: dict[str, Any] | None = None
    session_parameters: dict[str, Any] | None = None
    use_func_return_value: bool = False
    tasks: list[DagTaskCreate] = Field(default_factory=list)


class DagTaskPublic(BaseModel):
    name: str
    full_name: str = Field(description="<DAG>$<task>, as Snowflake names a DAG's child tasks")
    kind: str
    sql: str | None
    predecessors: list[str]
    is_finalizer: bool
    comment: str | None
    user_task_timeout_ms: int | None
    summary: dict[str, Any] | None


class DagPublic(BaseModel):
    database_name: str
    schema_name: str
    name: str
    state: Literal["started", "suspended"]
    schedule: DagSchedule | None
    next_scheduled_time: datetime | None
    graph_version: int
    warehouse: str | None
    comment: str | None
    allow_overlapping_execution: bool
    user_task_timeout_ms: int | None
    suspend_task_after_num_failures: int | None
    config: dict[str, Any] | None
    use_func_return_value: bool
    owner: str
    created_on: datetime
    last_suspended_reason: str | None
    tasks: list[DagTaskPublic]


class TaskRunPublic(BaseModel):
    name: str
    full_name: str
    state: str = Field(description="EXECUTING, SUCCEEDED or FAILED")
    return_value: str | None
    error_message: str | None
    query_start_time: datetime
    completed_time: datetime | None
    job_ids: list[str] = Field(description="Batch inference jobs the task started (DB.SCHEMA.NAME)")
    log: str = Field(description="The last lines a Python task printed")


class DagRunPublic(BaseModel):
    uuid: uuid.UUID
    run_id: int = Field(description="Epoch milliseconds of the run's scheduled time, as Snowflake's run_id")
    dag_name: str
    database_name: str
    schema_name: str
    state: str
    trigger: Literal["SCHEDULE", "EXECUTE"]
    scheduled_time: datetime
    query_start_time: datetime | None
    completed_time: datetime | None
    next_scheduled_time: datetime | None
    first_error_task_name: str | None
    first_error_code: int | None
    first_error_message: str | None
    graph_version: int
    missed_slots: int = Field(
        description="Earlier slots no scheduler fired (downtime), caught up by this run"
    )
    tasks: list[TaskRunPublic]


class TaskRunContext(BaseModel):
    """What a Python task's process knows of its run: the control plane writes it, TaskContext reads it."""

    database: str
    schema_: str = Field(alias="schema")
    dag: str = Field(description="Resolved DAG (root task) name")
    dag_id: uuid.UUID
    task: str = Field(description="Resolved task name, without the DAG prefix")
    run_id: uuid.UUID
    scheduled_time: datetime
    graph_version: int
    predecessors: dict[str, str | None] = Field(description="Each predecessor's return value, by task name")
    config: dict[str, Any] | None = None
    use_func_return_value: bool = False
    last_successful_scheduled_time: datetime | None = None
    last_successful_run_id: uuid.UUID | None = None

    model_config = {"populate_by_name": True}


class TaskRunResult(BaseModel):
    """What a Python task's process reports back when it ends."""

    return_value: str | None = None
    error: str | None = None
    job_ids: list[str] = Field(default_factory=list)
