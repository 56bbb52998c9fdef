"""inference_engine_options: Snowflake's vLLM checks (reference §1.4 step 5), then where vLLM can run."""

from __future__ import annotations

import pytest

from runbatch.errors import InvalidArgumentError
from runbatch.ml.model.inference_engine import InferenceEngine
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature
from runbatch.ml.model.openai_signatures import OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC
from runbatch.wire.registry import FunctionPublic
from server.jobs.validation import check_engine, check_engine_target

CHAT = FunctionPublic(
    name="__CALL__",
    target_method="__call__",
    target_method_function_type="FUNCTION",
    signature=OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC.to_dict(),
    is_partitioned=False,
)
TEXT = ModelSignature([FeatureSpec("inputs", DataType.STRING)], [FeatureSpec("outputs", DataType.STRING)])
PLAIN = FunctionPublic(
    name="__CALL__",
    target_method="__call__",
    target_method_function_type="FUNCTION",
    signature=TEXT.to_dict(),
    is_partitioned=False,
)
SPEC = {"options": {"task": "text-generation"}}


def test_vllm_is_accepted_with_user_args_then_tensor_parallelism_from_gpu_requests() -> None:
    options = {"engine": InferenceEngine.VLLM, "engine_args_override": ["--max-model-len=4096"]}
    assert check_engine(options, "huggingface_pipeline", SPEC, [CHAT], "4") == {
        "inference_engine_name": "vllm",
        "inference_engine_args": ["--max-model-len=4096", "--tensor-parallel-size=4"],
    }
    assert check_engine({"engine": "VLLM"}, "huggingface_pipeline", SPEC, [CHAT], None) == {
        "inference_engine_name": "vllm",
        "inference_engine_args": [],
    }
    assert check_engine(None, "sklearn", {}, [], None) is None


@pytest.mark.parametrize(
    ("model_type", "spec", "functions", "gpu", "message"),
    [
        (
            "sklearn",
            SPEC,
            [CHAT],
            None,
            "Inference engine is only supported for HuggingFace vLLM supported models. Found model_type: sklearn",
        ),
        (
            "huggingface_pipeline",
            {"options": {"task": "fill-mask"}},
            [CHAT],
            None,
            "Inference engine is only supported for vLLM supported tasks. text-generation, image-text-to-text, "
            "video-text-to-text, audio-text-to-text. Found task(s): ['fill-mask'] in model spec.",
        ),
        ("huggingface_pipeline", SPEC, [CHAT], "two", "Invalid gpu_requests: two with type str"),
        ("huggingface_pipeline", SPEC, [CHAT], "0", "Invalid gpu_requests: 0 with type str"),
    ],
)
def test_vllm_refusals_carry_snowflakes_messages(
    model_type: str, spec: dict[str, object], functions: list[FunctionPublic], gpu: str | None, message: str
) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        check_engine({"engine": InferenceEngine.VLLM}, model_type, spec, functions, gpu)
    assert str(err.value) == message


def test_vllm_needs_a_chat_signature() -> None:
    with pytest.raises(InvalidArgumentError) as err:
        check_engine({"engine": "vllm"}, "huggingface_pipeline", SPEC, [PLAIN], None)
    assert str(err.value).startswith(
        "Inference engine requires the model to be logged with one of the following signatures: "
        "[OPENAI_CHAT_SIGNATURE, OPENAI_CHAT_WITH_PARAMS_SIGNATURE]."
    )


def test_vllm_runs_only_on_gpu_pools_with_gpus_requested() -> None:
    engine = {"inference_engine_name": "vllm", "inference_engine_args": []}
    check_engine_target(engine, "SYSTEM_COMPUTE_POOL_GPU", "GPU_NV_S", True, "1")
    check_engine_target(None, "SYSTEM_COMPUTE_POOL_CPU", "CPU_X64_S", False, None)
    with pytest.raises(InvalidArgumentError) as err:
        check_engine_target(engine, "SYSTEM_COMPUTE_POOL_CPU", "CPU_X64_S", False, None)
    assert str(err.value) == (
        "The vLLM engine runs on GPUs, in the GPU runtime image, but compute pool SYSTEM_COMPUTE_POOL_CPU has "
        "instance family CPU_X64_S. Use SYSTEM_COMPUTE_POOL_GPU or a pool with a GPU_NV_* family, or run without "
        "inference_engine_options (the transformers engine runs on CPU pools)."
    )
    with pytest.raises(InvalidArgumentError) as err:
        check_engine_target(engine, "SYSTEM_COMPUTE_POOL_GPU", "GPU_NV_S", True, None)
    assert str(err.value) == (
        "The vLLM engine needs GPUs: set JobSpec(gpu_requests=...), the number of GPUs per replica (vLLM's tensor "
        "parallel size)."
    )


def test_the_task_is_found_in_a_logged_models_blob_options() -> None:
    logged = {
        "models": {"CHAT": {"model_type": "huggingface_pipeline", "options": {"task": "text-generation"}}}
    }
    assert check_engine({"engine": "vllm"}, "huggingface_pipeline", logged, [CHAT], "1") == {
        "inference_engine_name": "vllm",
        "inference_engine_args": ["--tensor-parallel-size=1"],
    }
    with pytest.raises(InvalidArgumentError) as err:
        check_engine({"engine": "vllm"}, "huggingface_pipeline", {"models": {}}, [CHAT], None)
    assert str(err.value).endswith("No task found in model spec.")
