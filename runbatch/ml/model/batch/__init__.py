"""Mirror of ``snowflake.ml.model.batch``."""

from runbatch.ml.model.batch._specs import (
    ColumnHandlingOptions,
    FileEncoding,
    InputFormat,
    InputSpec,
    JobSpec,
    OutputSpec,
    SaveMode,
)
from runbatch.ml.model.batch._task import BatchInferenceTask

__all__ = [
    "BatchInferenceTask",
    "ColumnHandlingOptions",
    "FileEncoding",
    "InputFormat",
    "InputSpec",
    "JobSpec",
    "OutputSpec",
    "SaveMode",
]
