"""``RunBatchOperator``: ``ModelVersion.run_batch`` as an Airflow task."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from runbatch.airflow.hook import DEFAULT_CONN_ID, RunbatchHook
from runbatch.airflow.job_request import (
    JobAddress,
    airflow_job_name,
    build_job_request,
    model_address,
)
from runbatch.airflow.triggers import ENDED_JOB_STATUSES, RunbatchJobTrigger
from runbatch.client import ControlPlaneClient
from runbatch.errors import InvalidArgumentError, NotFoundError, RunbatchError
from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec
from runbatch.wire.jobs import JobCreate, JobPublic

__all__ = ["RunBatchOperator"]

# A job in one of these statuses is not reused by a retry: its name is freed and a new job submitted.
_UNSUCCESSFUL = frozenset({"FAILED", "CANCELLING", "CANCELLED", "INTERNAL_ERROR"})


def _event(job: JobPublic) -> dict[str, Any]:
    return {
        "status": job.status,
        "job_name": job.id,
        "output_stage_location": job.output_location,
        "message": job.message,
    }


class RunBatchOperator(BaseOperator):
    """Submit a batch inference job to a runbatch server and wait for it, without holding a worker slot.

    The arguments are ``ModelVersion.run_batch``'s, with the model named instead of passed:
    ``X`` is a stage location of Parquet files (``'@DB.SCHEMA.STAGE/path/'``), a table name or a
    ``SELECT`` query. ``output_spec``, ``input_spec`` and ``job_spec`` take the specs or dicts of
    their fields (dicts are templated). The task returns (and pushes to XCom)
    ``{"job_name": "DB.SCHEMA.NAME", "output_stage_location": "@.../"}``.

    The job's name is ``job_spec.job_name`` if given, else derived from the DAG, task, run and map
    index (``<job_name_prefix or AIRFLOW>_<hash>``), so a retried task finds the job its earlier try
    submitted: it waits for a running job, takes a DONE job's result, and replaces a job that failed
    or was cancelled.
    """

    template_fields: Sequence[str] = (
        "model_name",
        "version_name",
        "X",
        "input_pattern",
        "compute_pool",
        "output_spec",
        "input_spec",
        "job_spec",
        "inference_engine_options",
        "database",
        "schema",
    )
    ui_color = "#29b5e8"

    def __init__(
        self,
        *,
        model_name: str,
        X: str,
        compute_pool: str,
        output_spec: OutputSpec | dict[str, Any],
        version_name: str | None = None,
        input_pattern: str | None = None,
        input_spec: InputSpec | dict[str, Any] | None = None,
        job_spec: JobSpec | dict[str, Any] | None = None,
        inference_engine_options: dict[str, Any] | None = None,
        database: str | None = None,
        schema: str | None = None,
        runbatch_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = True,
        poll_interval: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_name = model_name
        self.version_name = version_name
        self.X = X
        self.input_pattern = input_pattern
        self.compute_pool = compute_pool
        self.output_spec = output_spec
        self.input_spec = input_spec
        self.job_spec = job_spec
        self.inference_engine_options = inference_engine_options
        self.database = database
        self.schema = schema
        self.runbatch_conn_id = runbatch_conn_id
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.job: JobAddress | None = None

    # -- submit -----------------------------------------------------------------------------------
    def _job_name(self, context: Any) -> tuple[str, bool]:
        """The job's name, and whether it is derived (unique to this task instance)."""
        spec = self.job_spec
        fields = spec.model_dump() if isinstance(spec, JobSpec) else dict(spec or {})
        if fields.get("job_name"):
            return str(fields["job_name"]), False
        ti = context["ti"]
        map_index = ti.map_index if ti.map_index is not None else -1
        return airflow_job_name(
            ti.dag_id, ti.task_id, ti.run_id, map_index, fields.get("job_name_prefix")
        ), True

    def _request(self, client: ControlPlaneClient, job_name: str) -> tuple[JobCreate, JobAddress]:
        model = model_address(self.model_name, self.database, self.schema)
        version = self.version_name
        if version is None:
            version = client.get_model(model.database, model.schema, model.name).default_version_name
            if version is None:
                raise InvalidArgumentError(
                    f"Model {model.name} has no default version; pass version_name= to the operator."
                )
        return build_job_request(
            model=model,
            version_name=version,
            X=self.X,
            compute_pool=self.compute_pool,
            output_spec=self.output_spec,
            job_name=job_name,
            input_pattern=self.input_pattern,
            input_spec=self.input_spec,
            job_spec=self.job_spec,
            inference_engine_options=self.inference_engine_options,
            database=self.database,
            schema=self.schema,
        )

    def _existing(self, client: ControlPlaneClient, job: JobAddress) -> JobPublic | None:
        try:
            return client.get_job(job.database, job.schema, job.name)
        except NotFoundError:
            return None

    def submit(self, context: Any) -> JobPublic:
        """Submit this task instance's job, or find the one an earlier try submitted."""
        job_name, derived = self._job_name(context)
        with self._client() as client:
            body, address = self._request(client, job_name)
            self.job = address
            # A name the user chose may be reused across runs; only a retry of this task takes it over.
            existing = self._existing(client, address) if derived or context["ti"].try_number > 1 else None
            if existing is not None and existing.status not in _UNSUCCESSFUL:
                self.log.info(
                    "Job %s (from an earlier try) is %s; waiting for it", existing.id, existing.status
                )
                return existing
            if existing is not None:
                self.log.info(
                    "Job %s of an earlier try ended %s; submitting it again", existing.id, existing.status
                )
                client.delete_job(address.database, address.schema, address.name)
            job = client.submit_job(body)
            self.log.info("Submitted job %s writing to %s", job.id, job.output_location)
            return job

    def _client(self) -> _ClosingClient:
        return _ClosingClient(RunbatchHook(self.runbatch_conn_id))

    # -- run --------------------------------------------------------------------------------------
    def execute(self, context: Any) -> dict[str, str]:
        job = self.submit(context)
        if job.status in ENDED_JOB_STATUSES:
            return self.execute_complete(context, _event(job))
        if self.deferrable:
            assert self.job is not None
            self.defer(
                trigger=RunbatchJobTrigger(
                    self.job.database,
                    self.job.schema,
                    self.job.name,
                    runbatch_conn_id=self.runbatch_conn_id,
                    poll_interval=self.poll_interval,
                ),
                method_name="execute_complete",
                timeout=self.execution_timeout,
            )
        return self.execute_complete(context, self._poll())

    def _poll(self) -> dict[str, Any]:
        assert self.job is not None
        with self._client() as client:
            while True:
                job = client.get_job(self.job.database, self.job.schema, self.job.name)
                if job.status in ENDED_JOB_STATUSES:
                    return _event(job)
                self.log.info("Job %s is %s (%d rows done)", job.id, job.status, job.rows_done)
                time.sleep(self.poll_interval)

    def execute_complete(self, context: Any, event: dict[str, Any]) -> dict[str, str]:
        """Called with the trigger's event when the job ended; fails the task unless it is DONE."""
        status = event["status"]
        if status == "DONE":
            return {"job_name": event["job_name"], "output_stage_location": event["output_stage_location"]}
        raise AirflowException(
            f"Job {event['job_name']} failed to complete. Exited with status: {status}. {event['message']}"
        )

    def on_kill(self) -> None:
        """The task was killed while it ran in a worker: cancel its job (a deferred task's trigger does)."""
        if self.job is None:
            return
        try:
            with self._client() as client:
                job = client.cancel_job(self.job.database, self.job.schema, self.job.name)
        except RunbatchError as exc:
            # on_kill must not raise; the job may have ended already, or the server be down.
            self.log.warning("Cancelling job %s failed: %s", self.job, exc)
            return
        self.log.info("Cancelled job %s (%s)", job.id, job.status)


class _ClosingClient(ControlPlaneClient):
    """A ``ControlPlaneClient`` usable in ``with``: the connection pool is closed on exit."""

    def __init__(self, hook: RunbatchHook) -> None:
        url, token = hook.credentials()
        super().__init__(url, token)

    def __enter__(self) -> _ClosingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
