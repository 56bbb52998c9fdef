"""``BatchInferenceTask``: a DAG task that runs a batch inference job, as Snowflake's.

Each run of the task submits a new ``run_batch`` job and waits for it: the task succeeds when
the job is DONE and ``_SUCCESS`` is in its output, and its return value is JSON with
``output_stage_location`` (plus ``job_id``), which a successor reads with
``TaskContext(session).get_predecessor_return_value(...)``. A job that does not end DONE fails
the task, so the run fails and the task's successors do not run.

``X`` is captured as what it is, not as data: a query or ``session.table(...)`` runs again on
every run, stage files are listed again; only rows made on the client (``create_dataframe``)
travel with the task. With ``OutputSpec(base_stage_location=...)`` every run writes to its own
``<base>/<job name>/``; with ``stage_location`` every run replaces the previous run's files
(``OutputSpec.mode`` is not applied, as in Snowflake's task).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from runbatch.core.task.context import TaskContext, _record_job
from runbatch.core.task.dagv1 import DAGTask
from runbatch.errors import InvalidArgumentError
from runbatch.ml.model.batch._specs import InputSpec, JobSpec, OutputSpec, SaveMode
from runbatch.ml.model.inference_engine import InferenceEngine

if TYPE_CHECKING:
    from runbatch.ml.model._model_version import ModelVersion
    from runbatch.snowpark.dataframe import DataFrame, Plan
    from runbatch.snowpark.session import Session

__all__ = ["BatchInferenceTask"]

_SENTINEL = "_SUCCESS"


@dataclass(frozen=True)
class _BatchInferenceRun:
    """The task's definition: called with the task's Session on every run (pickled by reference)."""

    model: tuple[str, str, str, str]
    function_name: str | None
    plan: Plan
    database: str | None
    schema: str | None
    compute_pool: str
    input_spec: InputSpec
    output_spec: OutputSpec
    job_spec: JobSpec
    inference_engine_options: dict[str, Any] | None

    def _output(self) -> tuple[OutputSpec, str | None]:
        """The spec this run writes with, and its location when it is fixed (``stage_location``)."""
        spec = self.output_spec
        if spec.stage_location is not None:
            fixed = spec.stage_location if spec.stage_location.endswith("/") else spec.stage_location + "/"
            return OutputSpec(stage_location=spec.stage_location, mode=SaveMode.OVERWRITE), fixed
        return spec, None

    def __call__(self, session: Session) -> None:
        from runbatch.ml.model._model_version import ModelVersion
        from runbatch.snowpark.dataframe import DataFrame

        conn = session._conn
        if self.database is not None:
            conn.database, conn.schema = self.database, self.schema
        mv = ModelVersion._ref(session, conn.client.get_version(*self.model))
        output_spec, fixed = self._output()
        # The job's name comes from the server on every run; the task waits for it itself.
        job_spec = self.job_spec.model_copy(update={"block": False, "function_name": self.function_name})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # OVERWRITE's notice about the previous run's files
            job = mv.run_batch(
                DataFrame(session, self.plan),
                compute_pool=self.compute_pool,
                input_spec=self.input_spec,
                output_spec=output_spec,
                job_spec=job_spec,
                inference_engine_options=self.inference_engine_options,
            )
        _record_job(job.id)
        try:
            status = job.wait()
        except BaseException:
            # The task is being stopped (its DAG dropped, its timeout, a control plane shutdown).
            with contextlib.suppress(Exception):  # best effort on the way out
                job.cancel()
            raise
        info = job.info
        if status != "DONE":
            detail = f" {info.message}" if info.message else ""
            raise RuntimeError(f"Job {job.id} failed to complete. Exited with status: {status}.{detail}")
        location = conn.stage_path(info.output_location)
        sentinel = f"{location.path}/{_SENTINEL}" if location.path else _SENTINEL
        files = conn.client.list_stage_files(
            location.database, location.schema, location.stage, path=sentinel
        )
        if not any(f.path == sentinel for f in files):
            raise RuntimeError(
                f"Job {job.id} ended DONE but {info.output_location}{_SENTINEL} is missing; its output is not "
                "complete."
            )
        base = self.output_spec.base_stage_location
        shown = fixed if fixed is not None else f"{(base or '').rstrip('/')}/{job.name}/"
        TaskContext(session).set_return_value(json.dumps({"output_stage_location": shown, "job_id": job.id}))

    def __repr__(self) -> str:
        db, sch, model, version = self.model
        return f"<batch inference of {db}.{sch}.{model} version {version} on {self.compute_pool}>"


def _plan(X: DataFrame | pd.DataFrame) -> tuple[Plan, str | None, str | None]:
    from runbatch.snowpark.dataframe import DataFrame, LocalRows

    if isinstance(X, pd.DataFrame):
        return LocalRows(pa.Table.from_pandas(X, preserve_index=False)), None, None
    if isinstance(X, DataFrame):
        conn = X._session._conn
        return X._plan, conn.database, conn.schema
    raise InvalidArgumentError(
        f"X must be a runbatch DataFrame or a pandas DataFrame, not {type(X).__name__}."
    )


class BatchInferenceTask(DAGTask):
    """A ``DAGTask`` that runs a batch inference job for a registered model version on every run.

    Construct it inside a ``with DAG(...)`` block (or pass ``dag=``) and chain it with ``>>``.
    """

    def __init__(
        self,
        name: str,
        *,
        model_version: ModelVersion,
        X: DataFrame | pd.DataFrame,
        compute_pool: str,
        output_spec: OutputSpec,
        input_spec: InputSpec | None = None,
        job_spec: JobSpec | None = None,
        inference_engine_options: dict[str, Any] | None = None,
        **dagtask_kwargs: Any,
    ) -> None:
        if "definition" in dagtask_kwargs:
            raise TypeError("BatchInferenceTask builds its own task definition; do not pass `definition=`.")
        if not isinstance(output_spec, OutputSpec):
            raise InvalidArgumentError(
                "output_spec must be an OutputSpec, e.g. OutputSpec(base_stage_location='@STAGE/out/')."
            )
        self._fully_qualified_model_name = model_version.fully_qualified_model_name
        self._version_name = model_version.version_name
        self._compute_pool = compute_pool
        self._output_spec = output_spec
        self._input_spec = input_spec if input_spec is not None else InputSpec()
        self._job_spec = job_spec if job_spec is not None else JobSpec()
        engine = dict(inference_engine_options) if inference_engine_options else None
        if engine is not None and engine.get("engine") is not None:
            engine["engine"] = InferenceEngine.from_value(engine["engine"]).value
        self._inference_engine_options = engine
        function = model_version._function(self._job_spec.function_name or None)
        self._function_name: str = function["target_method"]
        plan, database, schema = _plan(X)
        run = _BatchInferenceRun(
            model=model_version._key,
            function_name=self._function_name,
            plan=plan,
            database=database,
            schema=schema,
            compute_pool=compute_pool,
            input_spec=self._input_spec,
            output_spec=output_spec,
            job_spec=self._job_spec,
            inference_engine_options=engine,
        )
        super().__init__(name, definition=run, **dagtask_kwargs)

    def _summary(self) -> dict[str, Any]:
        output = self._output_spec
        return {
            "kind": "batch_inference",
            "model": self._fully_qualified_model_name,
            "version": self._version_name,
            "function": self._function_name,
            "compute_pool": self._compute_pool,
            **(
                {"base_stage_location": output.base_stage_location}
                if output.base_stage_location is not None
                else {"stage_location": output.stage_location}
            ),
        }
