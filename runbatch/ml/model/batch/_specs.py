"""The batch inference specs of ``snowflake.ml.model.batch`` (1.x API), field for field."""

from __future__ import annotations

from enum import Enum
from typing import Any

from pydantic import BaseModel, model_validator
from typing_extensions import TypedDict

__all__ = [
    "ColumnHandlingOptions",
    "FileEncoding",
    "InputFormat",
    "InputSpec",
    "JobSpec",
    "OutputSpec",
    "SaveMode",
]


class SaveMode(str, Enum):
    """What run_batch does when the output location already holds files."""

    OVERWRITE = "overwrite"
    ERROR = "error"


class InputFormat(str, Enum):
    FULL_STAGE_PATH = "full_stage_path"


class FileEncoding(str, Enum):
    """How a file named in an input column reaches the model."""

    RAW_BYTES = "raw_bytes"
    BASE64 = "base64"
    BASE64_DATA_URL = "base64_data_url"


class ColumnHandlingOptions(TypedDict):
    input_format: InputFormat
    convert_to: FileEncoding


class InputSpec(BaseModel):
    params: dict[str, Any] | None = None
    column_handling: dict[str, ColumnHandlingOptions] | None = None
    partition_column: str | None = None


class OutputSpec(BaseModel):
    stage_location: str | None = None
    base_stage_location: str | None = None
    mode: SaveMode = SaveMode.ERROR

    @model_validator(mode="after")
    def _validate_stage_exclusivity(self) -> OutputSpec:
        if self.stage_location is not None and self.base_stage_location is not None:
            raise ValueError(
                "stage_location and base_stage_location are mutually exclusive. Please specify only one."
            )
        if self.stage_location is None and self.base_stage_location is None:
            raise ValueError("Either stage_location or base_stage_location must be provided.")
        return self


class JobSpec(BaseModel):
    image_repo: str | None = None
    job_name: str | None = None
    job_name_prefix: str | None = None
    num_workers: int | None = None
    function_name: str | None = None
    force_rebuild: bool = False
    max_batch_rows: int | None = None
    warehouse: str | None = None
    cpu_requests: str | None = None
    memory_requests: str | None = None
    gpu_requests: str | None = None
    replicas: int | None = None
    block: bool = False
    # runbatch's extension (not in Snowflake): rows that cannot be processed land in
    # <output>/_errors/ instead of failing the job. fail_fast restores Snowflake's behaviour (the
    # first failed row fails the job); the thresholds fail the job past that many failed rows.
    fail_fast: bool = False
    max_failed_rows: int | None = None
    max_failed_rows_fraction: float | None = None

    @model_validator(mode="after")
    def _validate_job_name_exclusivity(self) -> JobSpec:
        if self.job_name is not None and self.job_name_prefix is not None:
            raise ValueError(
                "job_name and job_name_prefix are mutually exclusive. Please specify only one or neither."
            )
        return self
