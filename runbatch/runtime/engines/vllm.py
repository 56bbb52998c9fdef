"""The vLLM engine: OpenAI chat completions for whole batches with vLLM's offline API.

A runtime whose job was submitted with ``inference_engine_options={"engine": InferenceEngine.VLLM}``
serves the function with this engine instead of the transformers pipeline: the logged
weights are loaded once with ``vllm.LLM(model=<weights folder>, **engine_args)`` (the job's
``engine_args_override``, with ``--tensor-parallel-size`` from ``gpu_requests``), and each batch
of conversations goes to ``LLM.chat`` in one call with one ``SamplingParams`` per row, so
vLLM's continuous batching schedules the whole batch. Media parts arrive as data URLs (the
runtime resolved their stage paths, ``runbatch.runtime.chat_messages``), which vLLM decodes.

Rows whose prompt is longer than the model's context (``max_model_len``) are rejected before
the batch is generated (``PROMPT_TOO_LONG``); the runtime narrows a failed batch down to its
bad rows, which become error rows.

vLLM is imported only here and only when the engine is built: it exists in the GPU runtime
image (``runtime_images/gpu``), not in the CPU one.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runbatch.errors import InputRowError, InvalidArgumentError, UnsupportedError
from runbatch.inference.function import ModelFunction
from runbatch.ml.model._signatures.core import BaseFeatureSpec, FeatureSpec, ModelSignature
from runbatch.packager.meta import ModelMeta
from runbatch.runtime.chat_messages import parse_messages, plain

__all__ = ["PROMPT_TOO_LONG", "VLLMChat", "parse_engine_args", "vllm_function"]

log = logging.getLogger("runbatch.runtime")

PROMPT_TOO_LONG = "PROMPT_TOO_LONG"
# OpenAI's default completion length when neither the params nor the row set one.
_DEFAULT_MAX_TOKENS = 250


def _value(text: str) -> Any:
    """An engine argument's value: JSON (numbers, true/false, objects), else the text itself."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_engine_args(args: list[str]) -> dict[str, Any]:
    """vLLM's command-line engine arguments as ``vllm.LLM`` keywords.

    ``--max-model-len=4096`` and ``--max-model-len 4096`` give ``max_model_len=4096``; a flag
    alone (``--enforce-eager``) gives True. A later argument overrides an earlier one, so the
    ``--tensor-parallel-size`` the control plane appends from ``gpu_requests`` wins.
    """
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = str(args[i]).strip()
        if not arg.startswith("--") or len(arg) == 2:
            raise InvalidArgumentError(
                f"Engine argument {arg!r} is not a vLLM engine argument; write them as in vLLM's command line, "
                "for example engine_args_override=['--max-model-len=4096', '--enforce-eager']."
            )
        name, sep, text = arg[2:].partition("=")
        if not sep and i + 1 < len(args) and not str(args[i + 1]).startswith("--"):
            i += 1
            text, sep = str(args[i]), "="
        out[name.replace("-", "_")] = _value(text) if sep else True
        i += 1
    return out


def _clean(value: Any) -> Any:
    """Messages without unset keys: list-typed columns give every struct field, most of them None."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _text_turns(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The text of a conversation, for counting its prompt tokens before media placeholders."""
    turns = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            text = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
        else:
            text = str(content or "")
        turns.append({"role": str(message.get("role") or "user"), "content": text})
    return turns


def _column(values: list[Any], spec: BaseFeatureSpec) -> pd.Series:
    """Scalar numbers in the output's own type (``created`` is a FLOAT), everything else as objects."""
    if (
        isinstance(spec, FeatureSpec)
        and not spec.shape
        and (spec.dtype.is_float() or spec.dtype.is_integer())
    ):
        return pd.Series(np.asarray(values, dtype=spec.dtype.numpy_type))
    return pd.Series(values, dtype=object)


class VLLMChat:
    """An InferFn answering OpenAI chat rows with a ``vllm.LLM``.

    ``llm_class`` and ``sampling_params_class`` default to vLLM's own; tests pass a recorded
    fake with the same signatures (tests/runbatch/runtime/engines/fake_vllm.py).
    """

    def __init__(
        self,
        model_path: str,
        model_name: str,
        signature: ModelSignature,
        engine_args: list[str],
        *,
        llm_class: Any = None,
        sampling_params_class: Any = None,
    ) -> None:
        if llm_class is None or sampling_params_class is None:
            try:
                import vllm  # type: ignore[import-not-found]
            except ImportError:
                raise UnsupportedError(
                    "The vLLM engine needs vLLM, which is in the GPU runtime image only. Run the job on a GPU "
                    "compute pool with gpu_requests set, served by a worker with the docker executor "
                    "(RUNBATCH_EXECUTOR=docker; its GPU image is runtime_images/gpu, or RUNBATCH_DOCKER_GPU_IMAGE)."
                ) from None
            llm_class = llm_class or vllm.LLM
            sampling_params_class = sampling_params_class or vllm.SamplingParams
        kwargs = parse_engine_args(engine_args)
        kwargs.setdefault("tensor_parallel_size", 1)
        self.model_name = model_name
        self.signature = signature
        self.has_params = bool(signature.params)
        self.sampling_params_class = sampling_params_class
        started = time.monotonic()
        self.llm = llm_class(model=model_path, **kwargs)
        log.info(
            "vLLM engine loaded in %.1fs (%s).",
            time.monotonic() - started,
            ", ".join(f"{k}={v}" for k, v in sorted(kwargs.items())),
        )
        self.max_model_len: int | None = getattr(
            getattr(getattr(self.llm, "llm_engine", None), "model_config", None), "max_model_len", None
        )

    def _sampling(self, src: dict[str, Any]) -> Any:
        max_tokens = src.get("max_completion_tokens")
        stop = src.get("stop")
        kwargs: dict[str, Any] = {
            "n": int(src.get("n") or 1),
            "temperature": 1.0 if src.get("temperature") is None else float(src["temperature"]),
            "top_p": 1.0 if src.get("top_p") is None else float(src["top_p"]),
            "max_tokens": _DEFAULT_MAX_TOKENS if max_tokens is None else int(max_tokens),
            "stop": [str(s) for s in stop if s] if isinstance(stop, list | tuple) else None,
            "frequency_penalty": float(src.get("frequency_penalty") or 0.0),
            "presence_penalty": float(src.get("presence_penalty") or 0.0),
        }
        return self.sampling_params_class(**kwargs)

    def _check_prompt(self, messages: list[dict[str, Any]]) -> None:
        if self.max_model_len is None:
            return
        try:
            tokens = len(
                self.llm.get_tokenizer().apply_chat_template(
                    _text_turns(messages), add_generation_prompt=True, tokenize=True
                )
            )
        except Exception:  # noqa: BLE001 - a template that wants other content: vLLM itself checks later
            return
        if tokens >= self.max_model_len:
            raise InputRowError(
                PROMPT_TOO_LONG,
                f"The prompt is {tokens} tokens long (chat template applied), but the model takes at most "
                f"{self.max_model_len} tokens (max_model_len), prompt and completion together. Shorten the "
                "messages, or raise --max-model-len in engine_args_override.",
            )

    def __call__(self, df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        if df.empty:
            return pd.DataFrame({f.name: [] for f in self.signature.outputs})
        records: list[dict[str, Any]] = df.to_dict(orient="records")  # type: ignore[assignment]
        conversations = []
        for record in records:
            try:
                messages = _clean(parse_messages(record["messages"]))
            except Exception as exc:  # a RowError of the runtime's messages: the row, not the batch
                raise InputRowError(getattr(exc, "code", "MESSAGES_INVALID"), str(exc)) from None
            self._check_prompt(messages)
            conversations.append(messages)
        sampling = [
            self._sampling(params if self.has_params else {k: plain(v) for k, v in record.items()})
            for record in records
        ]
        # One call for the whole batch: vLLM schedules all its requests together (continuous batching).
        outputs = self.llm.chat(conversations, sampling_params=sampling, use_tqdm=False)
        if len(outputs) != len(records):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(records)} conversations.")
        rows = [self._completion(output) for output in outputs]
        return pd.DataFrame({f.name: _column([r[f.name] for r in rows], f) for f in self.signature.outputs})

    def _completion(self, output: Any) -> dict[str, Any]:
        prompt_tokens = len(output.prompt_token_ids or [])
        completion_tokens = sum(len(c.token_ids) for c in output.outputs)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": [
                {
                    "index": c.index,
                    "message": {"role": "assistant", "content": c.text},
                    "logprobs": None,
                    "finish_reason": c.finish_reason or "stop",
                }
                for c in output.outputs
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }


def vllm_function(
    version_dir: Path,
    method: str,
    engine_args: list[str],
    *,
    llm_class: Any = None,
    sampling_params_class: Any = None,
) -> ModelFunction:
    """The model's ``method`` served by vLLM from the logged transformers pipeline's weights folder."""
    model_dir = version_dir / "model" if (version_dir / "model" / "model.yaml").exists() else version_dir
    meta = ModelMeta.read(model_dir)
    blob = meta.models[meta.name]
    if blob.model_type != "huggingface_pipeline":
        raise UnsupportedError(
            f"The vLLM engine serves transformers pipelines; model {meta.name} is a {blob.model_type} model."
        )
    signature = meta.signatures[method]
    weights = model_dir / "models" / blob.name / blob.path
    name = str(blob.options.get("model") or meta.name)
    chat = VLLMChat(
        str(weights),
        name,
        signature,
        engine_args,
        llm_class=llm_class,
        sampling_params_class=sampling_params_class,
    )
    return ModelFunction(method, signature, chat, meta.function_type(method), meta.is_partitioned(method))
