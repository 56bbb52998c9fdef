"""The client side of ``ModelVersion.run_batch``: check, upload the input if it is local, submit.

Where the input already lives on the control plane's side it is never pulled through the
client: stage Parquet is read in place, and a DataFrame over tables or stage files (a query)
is sent as its SQL, which the control plane runs into the job's input folder.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runbatch.errors import InvalidArgumentError, OutputExistsError, RunbatchError
from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec, SaveMode
from runbatch.ml.model.inference_engine import InferenceEngine
from runbatch.wire.jobs import JobCreate, ModelRef, QueryInput, StageInput, UploadInput, encode_schema

if TYPE_CHECKING:
    from runbatch.ml.jobs import MLJob
    from runbatch.ml.model._model_version import ModelVersion
    from runbatch.snowpark.dataframe import DataFrame

__all__ = ["submit_batch"]

_UPLOAD_ROW_GROUP = 65_536


def _check_output(mv: ModelVersion, output_spec: OutputSpec) -> None:
    """Snowflake checks SaveMode in the client: ERROR fails fast, OVERWRITE warns (the server clears)."""
    if output_spec.stage_location is None:
        return
    conn = mv._conn
    location = conn.stage_path(output_spec.stage_location)
    shown = (
        output_spec.stage_location
        if output_spec.stage_location.endswith("/")
        else output_spec.stage_location + "/"
    )
    files = conn.client.list_stage_files(
        location.database, location.schema, location.stage, path=location.path + "/" if location.path else ""
    )
    if not files:
        return
    if output_spec.mode is SaveMode.ERROR:
        raise OutputExistsError(
            f"Output stage location '{shown}' is not empty. Found {len(files)} existing files. When using ERROR "
            "mode, the output location must be empty. Please clear the existing files or use OVERWRITE mode."
        )
    warnings.warn(
        f"Output stage location '{shown}' is not empty. Found {len(files)} existing files. OVERWRITE mode will "
        "remove all existing files in the output location before running the batch inference job.",
        stacklevel=3,
    )


def submit_batch(
    mv: ModelVersion,
    X: DataFrame | pd.DataFrame,
    *,
    compute_pool: str,
    input_spec: InputSpec | None,
    output_spec: OutputSpec,
    job_spec: JobSpec | None,
    inference_engine_options: dict[str, Any] | None,
) -> MLJob[Any]:
    from runbatch.ml.jobs import MLJob
    from runbatch.snowpark.dataframe import DataFrame, SqlStatement, StageFiles

    if not isinstance(output_spec, OutputSpec):
        raise InvalidArgumentError(
            "output_spec must be an OutputSpec, e.g. OutputSpec(stage_location='@STAGE/out/')."
        )
    input_spec = input_spec or InputSpec()
    job_spec = job_spec or JobSpec()
    engine = dict(inference_engine_options or {})
    if engine.get("engine") is not None:
        engine["engine"] = InferenceEngine.from_value(engine["engine"]).value
    conn = mv._conn
    db, sch, model, version = mv._key
    table: pa.Table | None = None
    source: StageInput | UploadInput | QueryInput
    if isinstance(X, pd.DataFrame):
        table = pa.Table.from_pandas(X, preserve_index=False)
    elif isinstance(X, DataFrame):
        plan = X._plan
        if isinstance(plan, StageFiles):
            source = StageInput(location=plan.location.as_dir(), pattern=plan.pattern)
        elif isinstance(plan, SqlStatement) and X._is_query():
            source = QueryInput(sql=plan.text)
        else:
            # Rows held here (create_dataframe) or a SHOW/LIST result: uploaded as Parquet.
            table = X._arrow()
    else:
        raise InvalidArgumentError(
            f"X must be a runbatch DataFrame or a pandas DataFrame, not {type(X).__name__}."
        )
    _check_output(mv, output_spec)
    if table is not None:
        source = UploadInput(arrow_schema=encode_schema(table.schema))
    body = JobCreate(
        database=conn.database,
        schema=conn.schema,
        model=ModelRef(database=db, schema_=sch, name=model, version=version),
        compute_pool=compute_pool,
        input=source,
        input_spec=input_spec,
        output_spec=output_spec,
        job_spec=job_spec,
        inference_engine_options=engine or None,
    )
    job = conn.client.submit_job(body)
    if table is not None:
        try:
            _upload(conn, job.input_location, table)
            job = conn.client.start_job(job.database_name, job.schema_name, job.name)
        except RunbatchError as exc:
            _abandon(conn, job.database_name, job.schema_name, job.name)
            if isinstance(exc, ValueError):
                raise
            raise RuntimeError(f"Failed to process input data: {exc}") from exc
        except Exception as exc:
            _abandon(conn, job.database_name, job.schema_name, job.name)
            raise RuntimeError(f"Failed to process input data: {exc}") from exc
    handle: MLJob[Any] = MLJob(job.id, session=mv._session)
    if job_spec.block:
        handle.wait()
    return handle


def _abandon(conn: Any, database: str, schema: str, name: str) -> None:
    try:
        conn.client.cancel_job(database, schema, name)
    except RunbatchError:
        pass


def _upload(conn: Any, input_location: str, table: pa.Table) -> None:
    location = conn.stage_path(input_location)
    with tempfile.TemporaryDirectory(prefix="runbatch-input-") as tmp:
        path = os.path.join(tmp, "input.parquet")
        pq.write_table(table, path, row_group_size=_UPLOAD_ROW_GROUP, compression="snappy")
        with open(path, "rb") as f:
            conn.client.upload_stage_file(
                location.database,
                location.schema,
                location.stage,
                f"{location.path}/part-00000.parquet",
                iter(lambda: f.read(1 << 20), b""),
            )
