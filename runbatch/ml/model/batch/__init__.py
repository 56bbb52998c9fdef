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

__all__ = [
    "ColumnHandlingOptions",
    "FileEncoding",
    "InputFormat",
    "InputSpec",
    "JobSpec",
    "OutputSpec",
    "SaveMode",
]
