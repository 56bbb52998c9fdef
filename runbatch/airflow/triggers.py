"""Triggers: wait in Airflow's triggerer (asyncio) for a runbatch job to end, or for a stage file.

While a task is deferred no worker slot is held; the triggerer polls the control plane over HTTP.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from runbatch.airflow.hook import DEFAULT_CONN_ID, RunbatchHook
from runbatch.airflow.job_request import JobAddress
from runbatch.errors import RunbatchError, ServiceUnavailableError, TransportError
from runbatch.stage.paths import StagePath

__all__ = ["ENDED_JOB_STATUSES", "RunbatchJobTrigger", "RunbatchStageFileTrigger"]

ENDED_JOB_STATUSES = frozenset({"DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR", "DELETED"})
# A control plane restart or a network blip must not fail a job that is still running.
_TRANSIENT = (TransportError, ServiceUnavailableError)


class _Polling:
    """Counts consecutive transient errors; more than ``limit`` in a row is a real failure."""

    def __init__(self, limit: int) -> None:
        self.limit, self.failures = limit, 0

    def tolerate(self, exc: Exception) -> bool:
        self.failures += 1
        return isinstance(exc, _TRANSIENT) and self.failures <= self.limit


class RunbatchJobTrigger(BaseTrigger):
    """Fires once, when the job ends: ``{"status", "job_name", "output_stage_location", "message"}``.

    ``status`` is the job's final status (DONE, FAILED, CANCELLED, INTERNAL_ERROR, DELETED), or
    ``error`` when the job could not be read (``message`` says why).
    """

    def __init__(
        self,
        database: str,
        schema: str,
        name: str,
        runbatch_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 10.0,
        max_transient_errors: int = 30,
    ) -> None:
        super().__init__()
        self.job = JobAddress(database, schema, name)
        self.runbatch_conn_id = runbatch_conn_id
        self.poll_interval = poll_interval
        self.max_transient_errors = max_transient_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "database": self.job.database,
                "schema": self.job.schema,
                "name": self.job.name,
                "runbatch_conn_id": self.runbatch_conn_id,
                "poll_interval": self.poll_interval,
                "max_transient_errors": self.max_transient_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = RunbatchHook(self.runbatch_conn_id)
        polling = _Polling(self.max_transient_errors)
        while True:
            try:
                job = await hook.aget_job(self.job)
            except RunbatchError as exc:
                if polling.tolerate(exc):
                    self.log.warning("Reading job %s failed, retrying: %s", self.job, exc)
                    await asyncio.sleep(self.poll_interval)
                    continue
                yield TriggerEvent({"status": "error", "job_name": str(self.job), "message": str(exc)})
                return
            polling.failures = 0
            if job.status in ENDED_JOB_STATUSES:
                yield TriggerEvent(
                    {
                        "status": job.status,
                        "job_name": job.id,
                        "output_stage_location": job.output_location,
                        "message": job.message,
                    }
                )
                return
            self.log.info("Job %s is %s (%d rows done)", job.id, job.status, job.rows_done)
            await asyncio.sleep(self.poll_interval)

    async def on_kill(self) -> None:
        """The deferred task was marked failed or cleared: stop the job it waits for."""
        await RunbatchHook(self.runbatch_conn_id).acancel_job(self.job)


class RunbatchStageFileTrigger(BaseTrigger):
    """Fires once, when ``file_name`` exists directly under a stage location (``_SUCCESS`` by default)."""

    def __init__(
        self,
        database: str,
        schema: str,
        stage: str,
        path: str,
        file_name: str = "_SUCCESS",
        runbatch_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 10.0,
        max_transient_errors: int = 30,
    ) -> None:
        super().__init__()
        self.location = StagePath(database, schema, stage, path)
        self.file_name = file_name
        self.runbatch_conn_id = runbatch_conn_id
        self.poll_interval = poll_interval
        self.max_transient_errors = max_transient_errors

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "database": self.location.database,
                "schema": self.location.schema,
                "stage": self.location.stage,
                "path": self.location.path,
                "file_name": self.file_name,
                "runbatch_conn_id": self.runbatch_conn_id,
                "poll_interval": self.poll_interval,
                "max_transient_errors": self.max_transient_errors,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = RunbatchHook(self.runbatch_conn_id)
        polling = _Polling(self.max_transient_errors)
        wanted = self.location.child(self.file_name).path
        while True:
            try:
                files = await hook.alist_stage_files(self.location)
            except RunbatchError as exc:
                if polling.tolerate(exc):
                    self.log.warning("Listing %s failed, retrying: %s", self.location.as_dir(), exc)
                    await asyncio.sleep(self.poll_interval)
                    continue
                yield TriggerEvent(
                    {"status": "error", "location": self.location.as_dir(), "message": str(exc)}
                )
                return
            polling.failures = 0
            if any(f.path == wanted for f in files):
                yield TriggerEvent({"status": "success", "location": self.location.as_dir(), "file": wanted})
                return
            await asyncio.sleep(self.poll_interval)
