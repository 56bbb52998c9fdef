"""The batch specs and the engine enum behave as snowflake.ml's (reference §1.1-1.3)."""

from __future__ import annotations

import pydantic
import pytest

from runbatch.ml.model.batch import (
    ColumnHandlingOptions,
    FileEncoding,
    InputFormat,
    InputSpec,
    JobSpec,
    OutputSpec,
    SaveMode,
)
from runbatch.ml.model.inference_engine import InferenceEngine


def test_defaults() -> None:
    assert InputSpec().model_dump() == {"params": None, "column_handling": None, "partition_column": None}
    assert OutputSpec(stage_location="@s/").mode is SaveMode.ERROR
    spec = JobSpec()
    assert (spec.force_rebuild, spec.block, spec.replicas, spec.max_batch_rows) == (False, False, None, None)


def test_validators_and_messages() -> None:
    with pytest.raises(
        pydantic.ValidationError,
        match="Value error, stage_location and base_stage_location are "
        "mutually exclusive. Please specify only one.",
    ):
        OutputSpec(stage_location="@a/", base_stage_location="@b/")
    with pytest.raises(
        pydantic.ValidationError, match="Either stage_location or base_stage_location must be provided."
    ):
        OutputSpec()
    with pytest.raises(ValueError, match="job_name and job_name_prefix are mutually exclusive"):
        JobSpec(job_name="a", job_name_prefix="b")
    with pytest.raises(pydantic.ValidationError, match="Input should be a valid string"):
        JobSpec(cpu_requests=2)  # type: ignore[arg-type]
    with pytest.raises(pydantic.ValidationError, match="Input should be 'overwrite' or 'error'"):
        OutputSpec(stage_location="@a/", mode="OVERWRITE")  # type: ignore[arg-type]
    assert OutputSpec(stage_location="@a/", mode="overwrite").mode is SaveMode.OVERWRITE  # type: ignore[arg-type]
    assert JobSpec(unknown=1).model_dump().get("unknown") is None  # type: ignore[call-arg]


def test_column_handling_needs_both_keys() -> None:
    ok: ColumnHandlingOptions = {
        "input_format": InputFormat.FULL_STAGE_PATH,
        "convert_to": FileEncoding.BASE64,
    }
    assert InputSpec(column_handling={"IMAGES": ok}).column_handling == {"IMAGES": ok}
    with pytest.raises(pydantic.ValidationError):
        InputSpec(column_handling={"IMAGES": {"encoding": FileEncoding.BASE64}})  # type: ignore[dict-item]


def test_inference_engine_from_value() -> None:
    assert InferenceEngine.from_value(InferenceEngine.VLLM) is InferenceEngine.VLLM
    assert InferenceEngine.from_value(" VLLM ") is InferenceEngine.VLLM
    assert InferenceEngine.from_value("python_generic") is InferenceEngine.PYTHON_GENERIC
    with pytest.raises(
        ValueError, match="Unsupported inference engine 'tgi'. Supported engines: vllm, python_generic."
    ):
        InferenceEngine.from_value("tgi")
    with pytest.raises(ValueError, match="Unsupported inference engine type int"):
        InferenceEngine.from_value(3)  # type: ignore[arg-type]
