"""Checks run before a job is accepted, in the order and with the messages of Snowflake's run_batch."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from runbatch.compute import parse_cpu, parse_gpu, parse_memory
from runbatch.errors import InvalidArgumentError
from runbatch.ml.model._signatures.core import BaseFeatureSpec, DataType, FeatureGroupSpec, FeatureSpec
from runbatch.ml.model.batch import FileEncoding, InputSpec, JobSpec
from runbatch.ml.model.inference_engine import VLLM_SUPPORTED_TASKS, InferenceEngine
from runbatch.wire.registry import FunctionPublic

__all__ = [
    "as_invalid_argument",
    "check_engine",
    "check_engine_target",
    "check_failed_rows",
    "check_gpu_runtime",
    "check_partitioning",
    "match_partition_column",
    "check_resources",
    "match_columns",
    "resolve_function",
]


@contextlib.contextmanager
def as_invalid_argument() -> Iterator[None]:
    """Snowflake's validation helpers raise plain ValueError/TypeError; keep the message, answer 400."""
    try:
        yield
    except InvalidArgumentError:
        raise
    except (ValueError, TypeError) as exc:
        raise InvalidArgumentError(str(exc)) from None


def resolve_function(
    functions: list[FunctionPublic], function_name: str | None, fqmn: str, version: str
) -> FunctionPublic:
    """Pick the function by SQL name (``predict`` matches ``PREDICT``) or the only one there is."""
    if function_name is None:
        if len(functions) != 1:
            raise InvalidArgumentError(
                f"There are more than 1 target methods available in the model {fqmn} version {version}. Please "
                "specify a `function_name` when calling the `run` method."
            )
        return functions[0]
    wanted = (
        function_name.upper() if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", function_name) else function_name
    )
    if wanted.startswith('"') and wanted.endswith('"'):
        wanted = wanted[1:-1]
    for fn in functions:
        if fn.name == wanted or fn.target_method == function_name:
            return fn
    raise InvalidArgumentError(
        f"There is no method with name {function_name} available in the model {fqmn} version {version}"
    )


def check_gpu_runtime(job_spec: JobSpec, model_spec: dict[str, Any], fqmn: str, version: str) -> None:
    if job_spec.gpu_requests is not None and "gpu" not in (model_spec.get("runtimes") or {}):
        raise InvalidArgumentError(
            f"GPU resources requested (gpu_requests={job_spec.gpu_requests}), but the model {fqmn} version {version} "
            "does not have GPU runtime support. Please ensure the model was logged with GPU runtime configuration or "
            "do not provide gpu_requests. To log the model with GPU runtime configuration, provide `cuda_version` in "
            "the `options` while calling the `log_model` function."
        )


def check_engine(
    options: dict[str, Any] | None,
    model_type: str,
    model_spec: dict[str, Any],
    functions: list[FunctionPublic],
    gpu_requests: str | None,
) -> dict[str, Any] | None:
    """Validate ``inference_engine_options``; returns the engine spec with tensor parallelism added."""
    if not options:
        return None
    if "engine" not in options:
        raise InvalidArgumentError("'engine' field is required in inference_engine_options")
    engine = InferenceEngine.from_value(options["engine"])
    args = list(options.get("engine_args_override") or [])
    if engine is InferenceEngine.VLLM:
        if model_type != "huggingface_pipeline":
            raise InvalidArgumentError(
                f"Inference engine is only supported for HuggingFace vLLM supported models. Found model_type: {model_type}"
            )
        task = model_spec.get("task_name") or (model_spec.get("options") or {}).get("task")
        tasks = [task] if task else []
        # A logged model's spec (model.yaml) keeps the pipeline's task in its model blob's options.
        for blob in (model_spec.get("models") or {}).values():
            blob_task = ((blob or {}).get("options") or {}).get("task")
            if blob_task and blob_task not in tasks:
                tasks.append(blob_task)
        if not any(t in VLLM_SUPPORTED_TASKS for t in tasks):
            found = f"Found task(s): {tasks} in model spec." if tasks else "No task found in model spec."
            raise InvalidArgumentError(
                "Inference engine is only supported for vLLM supported tasks. "
                f"{', '.join(VLLM_SUPPORTED_TASKS)}. {found}"
            )
        if not any(
            any(i.get("name") == "messages" and "specs" in i for i in fn.signature.get("inputs", []))
            for fn in functions
        ):
            raise InvalidArgumentError(
                "Inference engine requires the model to be logged with one of the following signatures: "
                "[OPENAI_CHAT_SIGNATURE, OPENAI_CHAT_WITH_PARAMS_SIGNATURE]. Please log the model again with one of "
                f"these supported signatures.Found signatures: { {fn.target_method: fn.signature for fn in functions} }. "
            )
        if gpu_requests is not None:
            try:
                tp = int(gpu_requests)
                if tp <= 0:
                    raise ValueError
            except ValueError:
                raise InvalidArgumentError(
                    f"Invalid gpu_requests: {gpu_requests} with type {type(gpu_requests).__name__}"
                ) from None
            args.append(f"--tensor-parallel-size={tp}")
    return {"inference_engine_name": engine.value, "inference_engine_args": args}


def check_engine_target(
    engine: dict[str, Any] | None, pool: str, instance_family: str, gpu_pool: bool, gpu_requests: str | None
) -> None:
    """vLLM runs on GPUs, in the GPU runtime image: a GPU pool, and GPUs requested (which the executor
    reserves, and which select that image)."""
    if not engine or engine.get("inference_engine_name") != InferenceEngine.VLLM.value:
        return
    if not gpu_pool:
        raise InvalidArgumentError(
            f"The vLLM engine runs on GPUs, in the GPU runtime image, but compute pool {pool} has instance family "
            f"{instance_family}. Use SYSTEM_COMPUTE_POOL_GPU or a pool with a GPU_NV_* family, or run without "
            "inference_engine_options (the transformers engine runs on CPU pools)."
        )
    if gpu_requests is None:
        raise InvalidArgumentError(
            "The vLLM engine needs GPUs: set JobSpec(gpu_requests=...), the number of GPUs per replica (vLLM's "
            "tensor parallel size)."
        )


def check_partitioning(input_spec: InputSpec, fn: FunctionPublic, model_type: str) -> None:
    column = input_spec.partition_column
    if column is None:
        return
    if model_type == "huggingface_pipeline":
        raise InvalidArgumentError(
            "partition_column is not supported for HuggingFace pipeline models in batch inference jobs. Please "
            "remove the partition_column from InputSpec."
        )
    if fn.target_method_function_type == "FUNCTION":
        raise InvalidArgumentError(
            "partition_column is not supported for FUNCTION type methods in batch inference jobs. Only "
            "TABLE_FUNCTION type methods support partitioning."
        )
    if fn.is_partitioned:
        outputs = {str(o.get("name", "")).upper() for o in fn.signature.get("outputs", [])}
        collisions = sorted(outputs & {column.upper()})
        if collisions:
            raise InvalidArgumentError(
                f"Partitioned model output includes the partition column(s) {collisions}. Batch inference "
                "automatically appends the partition column to the output of partitioned models; please remove "
                f"{collisions} from the model output and re-register the model."
            )


def check_resources(job_spec: JobSpec) -> None:
    """Resource strings as SPCS takes them: cpu "2" or "500m", memory "8Gi", gpu "1"."""
    if job_spec.cpu_requests is not None:
        parse_cpu(job_spec.cpu_requests)
    if job_spec.memory_requests is not None:
        parse_memory(job_spec.memory_requests)
    if job_spec.gpu_requests is not None:
        parse_gpu(job_spec.gpu_requests)
    for name in ("replicas", "max_batch_rows", "num_workers"):
        value = getattr(job_spec, name)
        if value is not None and value < 1:
            raise InvalidArgumentError(f"JobSpec.{name} must be at least 1; got {value}.")
    check_failed_rows(job_spec)


def check_failed_rows(job_spec: JobSpec) -> None:
    """The error-row settings (runbatch's extension): a count, a fraction, or fail_fast alone."""
    count, fraction = job_spec.max_failed_rows, job_spec.max_failed_rows_fraction
    if count is not None and count < 0:
        raise InvalidArgumentError(f"JobSpec.max_failed_rows must be 0 or more; got {count}.")
    if fraction is not None and not 0.0 <= fraction <= 1.0:
        raise InvalidArgumentError(
            f"JobSpec.max_failed_rows_fraction must be between 0 and 1; got {fraction}."
        )
    if job_spec.fail_fast and (count is not None or fraction is not None):
        raise InvalidArgumentError(
            "JobSpec.fail_fast fails the job on its first failed row, so max_failed_rows and "
            "max_failed_rows_fraction have no effect with it. Set fail_fast, or a threshold, not both."
        )


def _family(t: pa.DataType) -> str:
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "binary"
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        return "timestamp"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "list"
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return "struct"
    if pa.types.is_null(t):
        return "null"
    return "other"


def _accepts(feature: BaseFeatureSpec, family: str) -> bool:
    if family == "null":
        return True
    if isinstance(feature, FeatureGroupSpec):
        return family in ("struct", "list", "string")
    assert isinstance(feature, FeatureSpec)
    if feature.shape:
        return family == "list"
    dtype = feature.dtype
    if dtype.is_integer():
        return family == "int"
    if dtype.is_float():
        return family in ("int", "float")
    return {
        DataType.BOOL: family == "bool",
        DataType.STRING: family == "string",
        DataType.BYTES: family == "binary",
        DataType.TIMESTAMP_NTZ: family == "timestamp",
        DataType.OBJECT: True,
    }[dtype]


def match_partition_column(name: str | None, schema: pa.Schema) -> str | None:
    """The input column ``InputSpec.partition_column`` names (exactly, else case-insensitively)."""
    if name is None:
        return None
    columns = list(schema.names)
    if name in columns:
        return name
    folded = [c for c in columns if c.upper() == name.upper()]
    if len(folded) == 1:
        return str(folded[0])
    raise InvalidArgumentError(
        f"partition_column {name!r} is not a column of the input; the input has columns {columns}. Name one of "
        "them in InputSpec(partition_column=...)."
    )


def match_columns(
    features: list[BaseFeatureSpec],
    schema: pa.Schema,
    *,
    case_sensitive: bool,
    column_handling: dict[str, Any] | None,
    where: str,
) -> dict[str, str]:
    """Map each signature input to an input column (case-insensitively unless case_sensitive)."""
    columns = list(schema.names)
    handled = dict(column_handling or {})
    unknown_handled = [c for c in handled if c not in columns]
    if unknown_handled:
        raise InvalidArgumentError(
            f"column_handling names column(s) {unknown_handled} that the input does not have; input columns are "
            f"{columns}. Use the resolved column names (unquoted names are upper case, e.g. 'IMAGES')."
        )
    mapping: dict[str, str] = {}
    missing: list[str] = []
    for feature in features:
        if feature.name in columns:
            mapping[feature.name] = feature.name
            continue
        folded = [c for c in columns if c.upper() == feature.name.upper()] if not case_sensitive else []
        if len(folded) == 1:
            mapping[feature.name] = folded[0]
        else:
            missing.append(feature.name)
    if missing:
        raise InvalidArgumentError(
            f"Input data is missing column(s) {missing} required by {where}. The input has columns {columns}. "
            "Rename the input columns to the signature's input names (matched case-insensitively)."
        )
    for feature in features:
        column = mapping[feature.name]
        family = _family(schema.field(column).type)
        if column in handled:
            if family != "string":
                raise InvalidArgumentError(
                    f"Column {column} is in column_handling, so it must hold stage paths as strings; it has type "
                    f"{schema.field(column).type}."
                )
            convert = FileEncoding(handled[column]["convert_to"])
            wanted = DataType.BYTES if convert is FileEncoding.RAW_BYTES else DataType.STRING
            if isinstance(feature, FeatureSpec) and feature.dtype not in (wanted, DataType.OBJECT):
                raise InvalidArgumentError(
                    f"Column {column} is converted to {convert.name} by column_handling, but the signature input "
                    f"{feature.name} expects {feature.dtype}. Use convert_to="
                    + ("FileEncoding.RAW_BYTES" if feature.dtype is DataType.BYTES else "FileEncoding.BASE64")
                    + "."
                )
            continue
        if not _accepts(feature, family):
            expected = (
                "a group (struct, list or JSON text)"
                if isinstance(feature, FeatureGroupSpec)
                else f"{feature.dtype}{' with shape ' + str(feature.shape) if feature.shape else ''}"  # type: ignore[attr-defined]
            )
            raise InvalidArgumentError(
                f"Input column {column} has type {schema.field(column).type}, but the signature input {feature.name} "
                f"of {where} expects {expected}."
            )
    return mapping
