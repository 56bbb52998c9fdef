"""Jobs, shards and the worker/runtime protocol on the wire."""

from __future__ import annotations

import base64
import binascii
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

import pyarrow as pa
from pydantic import BaseModel, Field, model_validator

from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec
from runbatch.stage.storage import StorageConfig

__all__ = [
    "ColumnSchema",
    "decode_schema",
    "encode_schema",
    "FileStage",
    "InputSlice",
    "JobCreate",
    "JobErrorsPublic",
    "JobOutputFile",
    "JobOutputsPublic",
    "JobPublic",
    "JobsPublic",
    "LogBatch",
    "LogLine",
    "LogsPublic",
    "ModelRef",
    "OutputFile",
    "QueryInput",
    "ShardAck",
    "ShardAssignment",
    "ShardClaim",
    "ShardComplete",
    "ShardExit",
    "ShardFail",
    "ShardHeartbeat",
    "ShardProgress",
    "ShardPublic",
    "ShardWork",
    "StageInput",
    "UploadInput",
]


class ModelRef(BaseModel):
    database: str
    schema_: str = Field(alias="schema")
    name: str
    version: str

    model_config = {"populate_by_name": True}


class ColumnSchema(BaseModel):
    name: str
    type: str = Field(description="Arrow type as text, e.g. double, int64, string, binary")


class StageInput(BaseModel):
    """Input already on a stage as Parquet; read in place."""

    kind: Literal["stage"] = "stage"
    location: str
    pattern: str | None = Field(default=None, description="Regular expression on file paths under location")


class QueryInput(BaseModel):
    """A query (Snowflake SQL: SELECT or WITH over tables and stage files) whose rows are the input.

    The control plane runs it and streams the result into Parquet under the job's
    ``input_location``, so DataFrames built from tables and stage files never pass through the client.
    """

    kind: Literal["query"] = "query"
    sql: str = Field(min_length=1)


class UploadInput(BaseModel):
    """Input the client uploads as Parquet under the job's ``input_location`` before ``start``.

    Give the schema exactly with ``arrow_schema`` (any Arrow type), or as ``columns`` with
    simple type names (``double``, ``int64``, ``string``, ``binary``, ``list<item: double>``...).
    """

    kind: Literal["upload"] = "upload"
    columns: list[ColumnSchema] | None = None
    arrow_schema: str | None = Field(
        default=None, description="Base64 of the Arrow IPC schema: base64(pyarrow_schema.serialize())"
    )

    @model_validator(mode="after")
    def _one_schema(self) -> UploadInput:
        if (self.columns is None) == (self.arrow_schema is None):
            raise ValueError("Give the uploaded input's schema as exactly one of columns or arrow_schema.")
        return self


def encode_schema(schema: pa.Schema) -> str:
    return base64.b64encode(schema.remove_metadata().serialize().to_pybytes()).decode("ascii")


def decode_schema(text: str) -> pa.Schema:
    try:
        return pa.ipc.read_schema(pa.py_buffer(base64.b64decode(text, validate=True)))
    except (binascii.Error, pa.ArrowInvalid) as exc:
        raise ValueError(f"arrow_schema is not a base64-encoded Arrow IPC schema ({exc}).") from exc


class JobCreate(BaseModel):
    database: str | None = Field(default=None, description="Current database, for relative stage names")
    schema_: str | None = Field(default=None, alias="schema", description="Current schema")
    model: ModelRef
    compute_pool: str
    input: Annotated[StageInput | UploadInput | QueryInput, Field(discriminator="kind")]
    input_spec: InputSpec = Field(default_factory=InputSpec)
    output_spec: OutputSpec
    job_spec: JobSpec = Field(default_factory=JobSpec)
    inference_engine_options: dict[str, Any] | None = None

    model_config = {"populate_by_name": True}


class JobPublic(BaseModel):
    uuid: uuid.UUID
    id: str = Field(description="Fully qualified name DB.SCHEMA.NAME, as MLJob.id")
    database_name: str
    schema_name: str
    name: str
    status: str
    phase: str
    message: str
    owner: str
    compute_pool: str
    model_name: str
    version_name: str
    function_name: str
    output_location: str
    input_location: str
    replicas: int
    rows_total: int | None
    rows_done: int
    rows_failed: int
    shards_total: int
    shards_done: int
    shards_failed: int
    created_at: datetime
    input_ready_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    spec: dict[str, Any]


class JobsPublic(BaseModel):
    """One page of jobs, newest first (see docs/rest.md, "Pagination")."""

    data: list[JobPublic]
    count: int = Field(description="How many jobs match the filters, over all pages")
    next_page_token: str | None = Field(
        default=None, description="Pass as page_token for the next page; null on the last page"
    )


class ShardPublic(BaseModel):
    id: uuid.UUID
    index: int
    state: str
    attempt: int
    max_attempts: int
    rows_total: int
    rows_done: int
    rows_failed: int
    worker: str | None
    heartbeat_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    message: str


class LogLine(BaseModel):
    instance_id: int
    attempt: int
    logged_at: datetime
    line: str


class LogsPublic(BaseModel):
    data: list[LogLine]


class JobOutputFile(BaseModel):
    path: str = Field(description="Path under the job's output location, e.g. part-00000.parquet")
    size: int = Field(description="Bytes")
    last_modified: datetime


class JobOutputsPublic(BaseModel):
    """The files under a job's output location; ``success`` once ``_SUCCESS`` marks it complete."""

    location: str = Field(description="The output location, e.g. @DB.PUBLIC.DATA/out/")
    success: bool = Field(description="Whether _SUCCESS exists: the job ended DONE, its output is complete")
    files: list[JobOutputFile]
    total_bytes: int


class JobErrorsPublic(BaseModel):
    """A sample of the rows that failed (the files under ``<output>/_errors/``), in file order."""

    columns: list[str]
    data: list[dict[str, Any]] = Field(description="Rows as JSON objects; binary values are base64 text")
    files: int = Field(description="How many error files the job committed")
    truncated: bool = Field(description="True when more error rows exist than were returned")


# -- worker and runtime protocol ----------------------------------------------------------------


class InputSlice(BaseModel):
    """Rows ``[offset, offset + rows)`` of one Parquet file."""

    key: str
    offset: int
    rows: int


class ShardClaim(BaseModel):
    worker: str = Field(description="Name of the claiming worker (host:pid)")


class FileStage(BaseModel):
    """A stage that rows of a file column name, with the storage its files are read from."""

    database: str
    schema_: str = Field(alias="schema")
    stage: str
    storage: StorageConfig
    root_key: str = Field(description="Key prefix of the stage's files in storage ('' for an external stage)")

    model_config = {"populate_by_name": True}


class ShardWork(BaseModel):
    """Everything a runtime needs to process one shard attempt."""

    shard_id: uuid.UUID
    job_id: uuid.UUID
    job_name: str
    index: int
    attempt: int
    replicas: int
    model_name: str
    version_name: str
    model_storage: StorageConfig
    model_key: str
    function_name: str = Field(description="Python method to call (the target method)")
    signature: dict[str, Any]
    function_type: str
    feature_columns: dict[str, str] = Field(description="Signature input name -> input column name")
    input_storage: StorageConfig
    slices: list[InputSlice]
    output_storage: StorageConfig
    output_prefix: str = Field(description="Key prefix this attempt writes its files under")
    params: dict[str, Any]
    column_handling: dict[str, Any] | None
    partition_column: str | None
    max_batch_rows: int | None
    num_workers: int | None
    cpu_requests: str | None
    memory_requests: str | None
    gpu_requests: str | None = None
    pip_requirements: list[str] = Field(default_factory=list, description="The model's logged requirements")
    conda_dependencies: list[str] = Field(default_factory=list)
    python_version: str | None = None
    force_rebuild: bool = False
    image_repo: str | None = None
    default_database: str | None = Field(default=None, description="For relative stage paths in file columns")
    default_schema: str | None = None
    file_stages: list[FileStage] = Field(
        default_factory=list, description="The stages files in column_handling columns are read from"
    )
    fail_fast: bool = Field(
        default=False, description="JobSpec.fail_fast: the first failed row fails the shard"
    )
    max_failed_rows: int | None = Field(default=None, description="JobSpec.max_failed_rows")
    inference_engine: dict[str, Any] | None = Field(
        default=None,
        description="The engine serving the function ({'inference_engine_name': 'vllm', 'inference_engine_args': "
        "[...]}); None: the model's own handler",
    )


class ShardAssignment(BaseModel):
    """What a worker gets for a won claim: the work order and the runtime's token."""

    work: ShardWork
    token: str = Field(description="Bearer token valid for this shard attempt only")


class ShardHeartbeat(BaseModel):
    attempt: int


class ShardAck(BaseModel):
    """Answer to heartbeats and progress: ``cancel`` tells the runner to stop the runtime."""

    cancel: bool


class ShardProgress(BaseModel):
    attempt: int
    rows_done: int
    rows_failed: int = 0


class OutputFile(BaseModel):
    key: str
    rows: int
    bytes: int
    kind: Literal["data", "errors"] = Field(
        default="data", description="errors: rows that failed, committed under <output>/_errors/"
    )


class ShardComplete(BaseModel):
    attempt: int
    files: list[OutputFile]
    rows_done: int
    rows_failed: int = 0


class ShardFail(BaseModel):
    attempt: int
    message: str
    retryable: bool = Field(description="True for crashes (retry), False for errors the model raised")


class ShardExit(BaseModel):
    """The worker's report after the runtime process ended and its output was shipped."""

    attempt: int
    exit_code: int
    message: str
    retryable: bool


class LogBatch(BaseModel):
    attempt: int
    lines: list[str]
