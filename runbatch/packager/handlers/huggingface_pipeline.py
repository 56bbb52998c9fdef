"""transformers pipelines: saved with save_pretrained, served per task with Snowflake's columns.

As in Snowflake, the signature comes from the pipeline's task (huggingface_signatures), the
pipeline's own settings (``top_k`` given at construction, ...) are pickled beside the weights
and restored on load, and each call turns the input columns into what that task's pipeline
takes (question/context pairs, pandas tables, PIL images, audio arrays, chat messages) and
its results back into the signature's output columns.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import sys
import time
import uuid
import warnings
import weakref
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

from runbatch.errors import InputRowError
from runbatch.ml.model._signatures.core import (
    BaseFeatureSpec,
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ModelSignature,
)
from runbatch.ml.model.models.huggingface import TransformersPipeline
from runbatch.ml.model.openai_signatures import OPENAI_CHAT_SIGNATURE_SPECS
from runbatch.packager.handlers.base import BASE_OPTIONS, InferFn, SaveRequest, target_methods
from runbatch.packager.handlers.huggingface_signatures import huggingface_pipeline_signature_auto_infer
from runbatch.packager.meta import BlobMeta, ModelMeta

__all__ = ["PROMPT_TOO_LONG", "HuggingFacePipelineHandler"]

log = logging.getLogger(__name__)

DEFAULT_TARGET_METHODS = ("__call__",)
MODEL_BLOB_DIR = "model"
PIPELINE_CONFIG_FILE = "pipeline_config.pt"
DEFAULT_CUDA_VERSION = "12.4"
# ERROR_CODE of a chat row whose prompt does not fit the model's context (error rows).
PROMPT_TOO_LONG = "PROMPT_TOO_LONG"
# The ERROR_CODEs runbatch.runtime.chat_messages gives the same problems found while reading.
_IMAGE_INVALID = "IMAGE_INVALID"
_MESSAGES_INVALID = "MESSAGES_INVALID"
_IMAGE_TASKS = frozenset(
    {
        "document-question-answering",
        "image-classification",
        "image-feature-extraction",
        "image-text-to-text",
        "image-to-text",
        "object-detection",
        "video-classification",
        "visual-question-answering",
        "zero-shot-image-classification",
        "zero-shot-object-detection",
    }
)
_CHAT_TASKS = ("image-text-to-text", "video-text-to-text", "audio-text-to-text")
_AUDIO_TASKS = frozenset(
    {"automatic-speech-recognition", "audio-classification", "zero-shot-audio-classification"}
)
_SAMPLE_INPUT_WARNING = (
    "Inferring model signature from sample input for hugggingface pipeline is not supported. "
    "Model signature will automatically be inferred from pipeline task. "
    "Or, you could specify model signature manually."
)


class HuggingFacePipelineHandler:
    handler_type = "huggingface_pipeline"
    allowed_options = BASE_OPTIONS | {"target_methods", "cuda_version"}

    def can_handle(self, model: Any) -> bool:
        if isinstance(model, TransformersPipeline):
            return True
        # Any Pipeline instance means transformers' pipeline base module is already imported.
        base = sys.modules.get("transformers.pipelines.base")
        return base is not None and isinstance(model, base.Pipeline)

    def save(self, model: Any, model_dir: Path, meta: ModelMeta, request: SaveRequest) -> BlobMeta:
        reference = None
        if isinstance(model, TransformersPipeline):
            # Logged by reference: the pipeline is built from the resolved files, then saved as any other.
            reference = model.model
            model = model.pipeline()
        if request.options.get("enable_explainability"):
            raise NotImplementedError("Explainability is not supported for huggingface model.")
        task = model.task
        tokenizer = getattr(model, "tokenizer", None)
        has_chat_template = tokenizer is not None and bool(getattr(tokenizer, "chat_template", None))
        params = _pipeline_params(model)
        inferred = huggingface_pipeline_signature_auto_infer(
            task, params=_signature_params(params), has_chat_template=has_chat_template
        )
        if not request.is_sub_model:
            _set_signatures(model, meta, request, inferred)
        save_path = model_dir / "models" / request.name / MODEL_BLOB_DIR
        save_path.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(save_path), safe_serialization=True)
        processor = _own_processor(model)
        if processor is not None:
            # Pipeline.save_pretrained leaves the processor out, and with it what only the
            # processor knows (a VLM's patch size and image token, its chat template).
            processor.save_pretrained(str(save_path))
        with open(save_path / PIPELINE_CONFIG_FILE, "wb") as f:
            cloudpickle.dump(_pipeline_state(model), f)
        meta.pip_requirements.extend(_requirements(model, task))
        # As in Snowflake, pipelines get a GPU runtime unless cuda_version=None says otherwise.
        cuda_version = request.options.get("cuda_version", DEFAULT_CUDA_VERSION)
        meta.cuda_version = None if cuda_version is None else str(cuda_version)
        pretrained = getattr(model, "model", None)
        batch_size = getattr(model, "_batch_size", None) or getattr(model, "batch_size", None)
        return BlobMeta(
            name=request.name,
            model_type=self.handler_type,
            path=MODEL_BLOB_DIR,
            options={
                "task": task,
                "batch_size": batch_size if batch_size is not None else 1,
                "model": reference or getattr(pretrained, "name_or_path", None),
                "has_tokenizer": tokenizer is not None,
                "has_feature_extractor": getattr(model, "feature_extractor", None) is not None,
                "has_image_preprocessor": getattr(model, "image_preprocessor", None) is not None,
                "has_processor": processor is not None,
                "is_repo_downloaded": False,
            },
        )

    def load(self, model_dir: Path, meta: ModelMeta, blob: BlobMeta) -> Any:
        import transformers

        options = blob.options
        for key in ("task", "batch_size"):
            if key not in options:
                raise ValueError(
                    f"Missing field `{key}` in model blob metadata for type `huggingface_pipeline`"
                )
        path = str(model_dir / "models" / blob.name / blob.path)
        extra: dict[str, Any] = {}
        # A pipeline that loads a processor takes its tokenizer from it: one named here would
        # be kept as the bare path, not loaded.
        if not _loads_processor(options["task"]):
            if options.get("has_tokenizer"):
                extra["tokenizer"] = path
            if options.get("has_feature_extractor"):
                extra["feature_extractor"] = path
        pipe = transformers.pipeline(
            options["task"], model=path, trust_remote_code=False, device=_device(meta), **extra
        )
        with open(Path(path) / PIPELINE_CONFIG_FILE, "rb") as f:
            state = cloudpickle.load(f)
        generation_config = state.pop("generation_config", None)
        pipe.__dict__.update(state)
        if generation_config is not None:
            pipe.generation_config = generation_config
        return pipe

    def inference_functions(self, model: Any, meta: ModelMeta) -> dict[str, InferFn]:
        if not self.can_handle(model):
            raise TypeError(f"{type(model)} is not a transformers pipeline.")
        _prepare_for_serving(model)
        return {m: _infer_fn(model, sig, m) for m, sig in meta.signatures.items()}


# -- saving ---------------------------------------------------------------------------------------


def _set_signatures(
    model: Any, meta: ModelMeta, request: SaveRequest, inferred: ModelSignature | None
) -> None:
    """Given signatures are checked against the pipeline's methods; otherwise the task's signature is used."""
    methods = target_methods(model, request.options.get("target_methods"), DEFAULT_TARGET_METHODS)
    if meta.signatures:
        target_methods(model, list(meta.signatures), ())
        return
    target_methods(model, methods, ())
    if request.sample_input_data is not None:
        warnings.warn(_SAMPLE_INPUT_WARNING, UserWarning, stacklevel=3)
    if inferred is None:
        raise NotImplementedError(f"Cannot auto infer the signature of pipeline for task {model.task}")
    meta.signatures = {"__call__": inferred}


def _pipeline_params(pipe: Any) -> dict[str, Any]:
    return {**pipe._preprocess_params, **pipe._forward_params, **pipe._postprocess_params}


def _signature_params(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` plus ``return_tensors=True`` when the pipeline was built to return tensors.

    Generation pipelines keep ``return_tensors=True`` as ``return_type=ReturnType.TENSORS``,
    so the auto-signature's ``return_tensors`` rule would otherwise never see it.
    """
    if getattr(params.get("return_type"), "name", None) == "TENSORS":
        return {**params, "return_tensors": True}
    return params


def _pipeline_state(pipe: Any) -> dict[str, Any]:
    state = {
        "_batch_size": pipe._batch_size,
        "_num_workers": pipe._num_workers,
        "_preprocess_params": pipe._preprocess_params,
        "_forward_params": pipe._forward_params,
        "_postprocess_params": pipe._postprocess_params,
    }
    # Generation settings given to the pipeline (max_new_tokens, ...) live in its own
    # generation config, which save_pretrained does not write.
    if getattr(pipe, "generation_config", None) is not None:
        state["generation_config"] = pipe.generation_config
    return state


def _loads_processor(task: str) -> bool:
    """Whether transformers' pipeline of ``task`` is built around a processor (image-text-to-text)."""
    from transformers.pipelines import check_task

    try:
        _, targeted, _ = check_task(task)
    except KeyError:
        return False
    return getattr(targeted.get("impl"), "_load_processor", None) is True


def _own_processor(pipe: Any) -> Any:
    """The pipeline's processor where its task is served through one, else None."""
    processor = getattr(pipe, "processor", None)
    if processor is None or not _loads_processor(str(pipe.task)):
        return None
    return processor


def _release(text: str) -> str:
    return text.split("+", 1)[0]


def _requirements(pipe: Any, task: str) -> list[str]:
    """Pins of the installed versions (local build tags such as +cpu dropped) of what serving needs."""
    names = ["transformers", "tokenizers"]
    if getattr(pipe, "framework", None) in (None, "pt"):
        names.append("torch")
    if task in _IMAGE_TASKS or getattr(pipe, "image_processor", None) is not None:
        names.append("pillow")
    if task in _AUDIO_TASKS:
        names.append("soundfile")
    return [f"{name}=={_release(metadata.version(name))}" for name in names]


# -- loading --------------------------------------------------------------------------------------


def _device(meta: ModelMeta) -> str:
    """CUDA where the model has a GPU runtime and a GPU is visible, else the CPU."""
    import torch

    return "cuda" if meta.cuda_version and torch.cuda.is_available() else "cpu"


def _prepare_for_serving(pipe: Any) -> None:
    """Snowflake's serving tweaks: plain (not binary) outputs, and a pad token so LLMs can batch."""
    pipe.binary_output = False
    tokenizer = getattr(pipe, "tokenizer", None)
    if tokenizer is None or tokenizer.pad_token_id is not None:
        return
    eos = getattr(pipe.model.config, "eos_token_id", None)
    if isinstance(eos, list) and eos and isinstance(eos[0], int):
        eos = eos[0]
    if isinstance(eos, int):
        tokenizer.pad_token_id = eos


# -- inference ------------------------------------------------------------------------------------

Caller = Callable[[Any, ModelSignature, pd.DataFrame, dict[str, Any]], list[Any]]


def _infer_fn(pipe: Any, signature: ModelSignature, method: str) -> InferFn:
    call = _caller(pipe.task, signature)
    target = getattr(pipe, method)

    def infer(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        if df.empty:
            return pd.DataFrame({f.name: [] for f in signature.outputs})
        results = call(target, signature, df, _native_params(params))
        return _to_frame(_per_row(results, len(df), signature), signature)

    return infer


def _caller(task: str | None, signature: ModelSignature) -> Caller:
    if task in ("text-generation", *_CHAT_TASKS) and signature in OPENAI_CHAT_SIGNATURE_SPECS:
        return _call_chat
    if task is not None and task.startswith("translation"):
        return _call_column
    return _CALLERS.get(task or "", _call_default)


def _native(value: Any) -> Any:
    """Python values for numpy ones: transformers checks ``isinstance(top_k, int)`` and the like."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return [_native(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_native(v) for v in value]
    if isinstance(value, dict):
        return {k: _native(v) for k, v in value.items()}
    return value


def _native_params(params: dict[str, Any]) -> dict[str, Any]:
    """Params with unset (None) values left out, recursively: pipelines treat a passed None as a value."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, dict):
            inner = _native_params(value)
            if inner:
                out[key] = inner
        else:
            out[key] = _native(value)
    return out


def _column(df: pd.DataFrame, signature: ModelSignature, i: int = 0) -> list[Any]:
    return [_native(v) for v in df[signature.inputs[i].name].tolist()]


def _call_column(pipe: Any, signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]) -> list[Any]:
    return pipe(_column(df, signature), **kw)  # type: ignore[no-any-return]


def _call_default(pipe: Any, signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]) -> list[Any]:
    # Pipelines of several arguments take one dict per row; of one, the plain values.
    if len(signature.inputs) > 1:
        data: list[Any] = [_native(r) for r in df.to_dict(orient="records")]
    else:
        data = _column(df, signature)
    return pipe(data, **kw)  # type: ignore[no-any-return]


def _call_question_answering(
    pipe: Any, _signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]
) -> list[Any]:
    # The question/context keywords, not a list of SQuAD dicts, which transformers deprecates.
    return pipe(question=df["question"].tolist(), context=df["context"].tolist(), **kw)  # type: ignore[no-any-return]


def _table(value: Any) -> pd.DataFrame:
    """A table given as JSON text: TAPAS writes Cell objects into it, so its columns hold objects."""
    return pd.DataFrame(json.loads(value) if isinstance(value, str | bytes) else value, dtype=object)


def _call_table_question_answering(
    pipe: Any, _signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]
) -> list[Any]:
    data = [{"query": q, "table": _table(t)} for q, t in zip(df["query"], df["table"], strict=True)]
    return pipe(data, **kw)  # type: ignore[no-any-return]


def _per_row_with_labels(
    convert: Callable[[Any], Any],
) -> Caller:
    def call(pipe: Any, signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]) -> list[Any]:
        first = signature.inputs[0].name
        return [
            pipe(convert(value), candidate_labels=_native(labels), **kw)
            for value, labels in zip(df[first], df["candidate_labels"], strict=True)
        ]

    return call


def _image(value: Any) -> Any:
    """Image bytes as a PIL image; text (a path, URL or base64) is left to transformers to load."""
    if isinstance(value, bytes | bytearray | memoryview):
        from PIL import Image

        return Image.open(io.BytesIO(bytes(value)))
    return value


def _audio(value: Any) -> Any:
    """Audio bytes decoded to a mono float32 array with its sampling rate.

    Formats libsndfile cannot read go to the pipeline as bytes, which it decodes with ffmpeg.
    """
    if not isinstance(value, bytes | bytearray | memoryview):
        return value
    import soundfile  # type: ignore[import-untyped]

    try:
        samples, rate = soundfile.read(io.BytesIO(bytes(value)), dtype="float32", always_2d=True)
    except soundfile.LibsndfileError:
        return bytes(value)
    return {"raw": samples.mean(axis=1, dtype=np.float32), "sampling_rate": rate}


def _call_images(pipe: Any, signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]) -> list[Any]:
    return pipe([_image(v) for v in df[signature.inputs[0].name]], **kw)  # type: ignore[no-any-return]


def _call_image_to_text(
    pipe: Any, signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]
) -> list[Any]:
    # Unlike text pipelines, image-to-text takes generation settings as one generate_kwargs dict.
    images = [_image(v) for v in df[signature.inputs[0].name]]
    return pipe(images, generate_kwargs=kw) if kw else pipe(images)  # type: ignore[no-any-return]


def _call_image_question(
    pipe: Any, _signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]
) -> list[Any]:
    return [
        pipe(image=_image(image), question=question, **kw)
        for image, question in zip(df["image"], df["question"], strict=True)
    ]


def _call_audio(pipe: Any, signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]) -> list[Any]:
    # Audio pipelines take one recording per call.
    return [pipe(_audio(v), **kw) for v in df[signature.inputs[0].name]]


def _call_chat(pipe: Any, _signature: ModelSignature, df: pd.DataFrame, kw: dict[str, Any]) -> list[Any]:
    chat = _chat(pipe.__self__)  # the bound __call__ of the pipeline
    records: list[dict[str, Any]] = df.to_dict(orient="records")  # type: ignore[assignment]
    # Every prompt is encoded and checked before any is generated: a batch with a prompt too
    # long (or an unreadable image) fails at once, and the runtime narrows it down to that row
    # (an error row) without generating twice. A VLM's inputs hold pixel values, too large to
    # keep for a whole batch: those are encoded again when their turn comes.
    keep = chat.processor is None
    prompts: list[Any] = []
    for record in records:
        messages = _messages(record["messages"])
        inputs = chat.encode(messages)
        prompts.append(inputs if keep else messages)
    return [
        chat.complete(p if keep else chat.encode(p), **_chat_settings(r, kw))
        for p, r in zip(prompts, records, strict=True)
    ]


_CALLERS: dict[str, Caller] = {
    "fill-mask": _call_column,
    "ner": _call_column,
    "token-classification": _call_column,
    "question-answering": _call_question_answering,
    "summarization": _call_column,
    "table-question-answering": _call_table_question_answering,
    "text-classification": _call_column,
    "sentiment-analysis": _call_column,
    "text-generation": _call_column,
    "text2text-generation": _call_column,
    "zero-shot-classification": _per_row_with_labels(lambda v: v),
    "zero-shot-image-classification": _per_row_with_labels(_image),
    "zero-shot-object-detection": _per_row_with_labels(_image),
    "zero-shot-audio-classification": _per_row_with_labels(_audio),
    "image-classification": _call_images,
    "image-feature-extraction": _call_images,
    "object-detection": _call_images,
    "image-to-text": _call_image_to_text,
    "visual-question-answering": _call_image_question,
    "document-question-answering": _call_image_question,
    "automatic-speech-recognition": _call_audio,
    "audio-classification": _call_audio,
}

# -- results to columns ---------------------------------------------------------------------------


def _is_list_output(signature: ModelSignature) -> bool:
    outputs = signature.outputs
    return len(outputs) == 1 and isinstance(outputs[0], FeatureGroupSpec) and outputs[0].shape is not None


def _per_row(result: Any, rows: int, signature: ModelSignature) -> list[Any]:
    """One result per input row: pipelines drop the outer list for a single input."""
    if isinstance(result, dict):
        result = [result]
    elif (
        rows == 1
        and _is_list_output(signature)
        and isinstance(result, list)
        and result
        and not isinstance(result[0], list)
    ):
        result = [result]
    out = list(result)
    if len(out) != rows:
        raise ValueError(f"The pipeline returned {len(out)} results for {rows} input rows.")
    return out


def _to_frame(results: list[Any], signature: ModelSignature) -> pd.DataFrame:
    outputs = signature.outputs
    values = [_native(r) for r in results]
    if len(outputs) == 1 and isinstance(outputs[0], FeatureGroupSpec):
        if outputs[0].shape is not None:
            # A single answer where a list of them is declared (top_k=1 passed): a list of one.
            values = [[v] if isinstance(v, dict) else v for v in values]
        return pd.DataFrame({outputs[0].name: pd.Series(values, dtype=object)})
    # top_k=1 passed to a pipeline that returns one dict per row otherwise gives a list of one.
    values = [v[0] if isinstance(v, list) and len(v) == 1 and isinstance(v[0], dict) else v for v in values]
    if all(isinstance(v, dict) for v in values):
        return pd.DataFrame({f.name: _typed([v.get(f.name) for v in values], f) for f in outputs})
    rows = [v if isinstance(v, list) else [v] for v in values]
    for row in rows:
        if len(row) != len(outputs):
            raise ValueError(
                "(2110) Data does not have the same number of features as signature. Signature requires "
                f"{len(outputs)} features, but have {len(row)} in input data."
            )
    return pd.DataFrame({f.name: _typed([row[i] for row in rows], f) for i, f in enumerate(outputs)})


def _typed(values: list[Any], spec: BaseFeatureSpec) -> pd.Series:
    """A column of the output's numpy type where it is a scalar number or flag without gaps."""
    if isinstance(spec, FeatureSpec) and not spec.shape and all(v is not None for v in values):
        dtype = spec.dtype
        if dtype.is_integer() or dtype.is_float() or dtype is DataType.BOOL:
            return pd.Series(np.asarray(values, dtype=dtype.numpy_type))
    return pd.Series(values, dtype=object)


# -- OpenAI chat ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    """Nested input values (numpy arrays from Arrow lists, NaN for missing) as plain Python."""
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        value = json.loads(value)
    return list(_plain(value) or [])


def _chat_settings(row: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """The chat knobs from the params, or (signatures without params) from the row's columns."""
    src = params if params else {k: _plain(v) for k, v in row.items()}
    n = src.get("n")
    return {
        "max_completion_tokens": src.get("max_completion_tokens"),
        "temperature": src.get("temperature"),
        "stop_strings": src.get("stop"),
        "n": 1 if n is None else int(n),
        "stream": bool(src.get("stream") or False),
        "top_p": src.get("top_p", 1.0),
        "frequency_penalty": src.get("frequency_penalty"),
        "presence_penalty": src.get("presence_penalty"),
    }


class _OpenAIChat:
    """OpenAI chat completions from a chat pipeline's model and chat template.

    A text-generation pipeline gets the text parts of the messages through its tokenizer's
    template. An image-text-to-text pipeline (a vision-language model) gets text and image parts
    through its processor's template, which expands each image into the model's image tokens and
    turns the images into pixel values: images reach the model as they do in transformers' own
    ``image-text-to-text`` pipeline.
    """

    def __init__(self, pipe: Any) -> None:
        self.model: Any = pipe.model
        processor = getattr(pipe, "processor", None)
        self.processor: Any = processor if pipe.task in _CHAT_TASKS and processor is not None else None
        tokenizer: Any = getattr(pipe, "tokenizer", None)
        if tokenizer is None and self.processor is not None:
            tokenizer = self.processor.tokenizer
        self.tokenizer: Any = tokenizer
        self.model_name = pipe.model.name_or_path
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self._dropped: set[str] = set()

    # -- prompts ----------------------------------------------------------------------------------

    def _text_turns(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        turns = []
        for message in messages:
            role = message.get("role") or "user"
            content = message.get("content")
            if content is None or isinstance(content, str):
                turns.append({"role": role, "content": content or ""})
                continue
            # Only text parts reach a text model; each becomes a turn of its own.
            turns.extend(
                {"role": role, "content": part.get("text") or ""}
                for part in content
                if isinstance(part, dict) and part.get("type") == "text"
            )
        return turns

    def _vision_turns(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Messages in transformers' multimodal chat format: text parts, and images as PIL images."""
        turns = []
        for message in messages:
            role = message.get("role") or "user"
            content = message.get("content")
            if content is None or isinstance(content, str):
                # Processor templates iterate over parts; a plain string is one text part.
                turns.append({"role": role, "content": [{"type": "text", "text": content or ""}]})
                continue
            parts: list[dict[str, Any]] = []
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "text":
                    parts.append({"type": "text", "text": part.get("text") or ""})
                elif kind == "image_url":
                    holder = part.get("image_url")
                    url = holder.get("url") if isinstance(holder, dict) else None
                    parts.append({"type": "image", "image": _load_image(url)})
                elif kind not in self._dropped:
                    self._dropped.add(str(kind))
                    log.warning(
                        "The %s model takes text and image parts; %r parts are not passed to it.",
                        self.model_name,
                        kind,
                    )
            turns.append({"role": role, "content": parts})
        return turns

    def encode(self, messages: list[dict[str, Any]]) -> Any:
        """The model's inputs for one conversation (chat template applied, generation prompt added),
        on the CPU. Raises PROMPT_TOO_LONG (an error row) when the prompt leaves no room to generate.
        """
        if self.processor is not None:
            inputs = self.processor.apply_chat_template(
                self._vision_turns(messages),
                add_generation_prompt=True,
                tokenize=True,
                return_dict=True,
                return_tensors="pt",
            )
        else:
            prompt = self.tokenizer.apply_chat_template(
                self._text_turns(messages), tokenize=False, add_generation_prompt=True
            )
            inputs = self.tokenizer(str(prompt), return_tensors="pt")
        tokens = int(inputs["input_ids"].shape[1])
        context = self.context_length()
        if context is not None and tokens >= context:
            images = " with its images" if self.processor is not None else ""
            raise InputRowError(
                PROMPT_TOO_LONG,
                f"The prompt is {tokens} tokens long (chat template applied{images}), but the model takes "
                f"at most {context} tokens, prompt and completion together. Shorten the messages.",
            )
        return inputs

    def context_length(self) -> int | None:
        """The most positions the model takes (prompt and completion together), when its config says."""
        config = self.model.config
        # A vision-language model's positions are its text model's.
        text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
        for source in (config, text_config):
            for name in ("max_position_embeddings", "n_positions", "max_sequence_length"):
                value = getattr(source, name, None)
                if isinstance(value, int) and value > 0:
                    return value
        return None

    # -- generation -------------------------------------------------------------------------------

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (getattr(self.model, "generation_config", None), self.tokenizer):
            value = getattr(source, "eos_token_id", None)
            if isinstance(value, int):
                ids.add(value)
            elif isinstance(value, list | tuple):
                ids.update(v for v in value if isinstance(v, int))
        return ids

    def _generation_config(
        self,
        max_completion_tokens: int,
        temperature: float | None,
        top_p: float | None,
        frequency_penalty: float | None,
        n: int,
    ) -> Any:
        import transformers

        temperature = 1.0 if temperature is None else temperature
        do_sample = temperature > 0.0
        config = transformers.GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max_completion_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
            do_sample=do_sample,
        )
        if do_sample:
            config.temperature = temperature
            if top_p is not None:
                config.top_p = top_p
        if frequency_penalty is not None:
            # OpenAI's penalty of 0 means none; transformers' repetition penalty of 1 does.
            config.repetition_penalty = 1.0 + max(frequency_penalty, 0.0)
        config.num_return_sequences = n
        if n > 1 and not do_sample:
            log.warning(
                "Forcing do_sample=True for n>1. Consider setting temperature > 0 for better diversity."
            )
            config.do_sample = True
            config.temperature = 1.0
        return config

    def complete(
        self,
        inputs: Any,
        *,
        max_completion_tokens: int | None = None,
        temperature: float | None = None,
        stop_strings: list[str] | None = None,
        n: int = 1,
        stream: bool = False,
        top_p: float | None = None,
        frequency_penalty: float | None = None,
        presence_penalty: float | None = None,
    ) -> dict[str, Any]:
        """One chat completion of the inputs ``encode`` made."""
        if self.processor is not None:
            # Pixel values in the model's dtype (half precision on a GPU), token ids as they are.
            inputs = inputs.to(self.model.device, dtype=self.model.dtype)
        else:
            inputs = inputs.to(self.model.device)
        if stream:
            log.warning(
                "Streaming is not supported using transformers.Pipeline implementation. Ignoring stream=True."
            )
        if presence_penalty:
            log.warning(
                "Presence penalty is not supported using transformers.Pipeline implementation. "
                "Ignoring presence_penalty."
            )
        prompt_tokens = int(inputs["input_ids"].shape[1])
        limit = max_completion_tokens if max_completion_tokens is not None else 1024
        context = self.context_length()
        if context is not None:
            # Generation past the model's positions fails (or wraps); stop at the context's end.
            limit = min(limit, context - prompt_tokens)
        config = self._generation_config(limit, temperature, top_p, frequency_penalty, n)
        stops = [s for s in stop_strings or [] if s]
        extra: dict[str, Any] = {}
        if stops:
            extra["stopping_criteria"] = self._stopping(stops, prompt_tokens)
        if self.processor is not None and n > 1:
            # generate() repeats each of the prompt's images in place for num_return_sequences,
            # which pairs images with the wrong image tokens when a prompt holds several: one
            # generation per choice instead.
            config.num_return_sequences = 1
            sequences = [row for _ in range(n) for row in self._generate(inputs, config, extra)]
        else:
            sequences = list(self._generate(inputs, config, extra))
        eos = self._eos_ids()
        choices = []
        completion_tokens = 0
        for i, ids in enumerate(sequences):
            generated = ids[prompt_tokens:].tolist()
            ended = next((j for j, token in enumerate(generated) if token in eos), None)
            if ended is not None:
                # The end-of-sequence token counts (as in vLLM); the padding after it, where
                # other choices ran longer, does not.
                generated = generated[: ended + 1]
            completion_tokens += len(generated)
            text = self.tokenizer.decode(generated, skip_special_tokens=True)
            stopped = ended is not None
            for stop in stops:
                if stop in text:
                    text = text[: text.find(stop)]
                    stopped = True
                    break
            # OpenAI's reasons: "length" when the token limit (max_completion_tokens, or the
            # model's context) cut the completion, "stop" when it ended on its own or at a stop string.
            finish_reason = "length" if not stopped and len(generated) >= limit else "stop"
            choices.append(
                {
                    "index": i,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            )
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model_name,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }

    def _generate(self, inputs: Any, config: Any, extra: dict[str, Any]) -> Any:
        output_ids: Any = self.model.generate(**inputs, generation_config=config, **extra)
        return output_ids.unsqueeze(0) if output_ids.dim() == 1 else output_ids

    def _stopping(self, stops: list[str], prompt_tokens: int) -> Any:
        import transformers

        tokenizer: Any = self.tokenizer

        class _StopStrings(transformers.StoppingCriteria):
            """Stops once any sequence's new text contains a stop string (the prompt is not searched)."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                for ids in input_ids:
                    text = tokenizer.decode(ids[prompt_tokens:], skip_special_tokens=True)
                    if any(stop in text for stop in stops):
                        return True
                return False

        return transformers.StoppingCriteriaList([_StopStrings()])


_CHATS: weakref.WeakKeyDictionary[Any, _OpenAIChat] = weakref.WeakKeyDictionary()


def _chat(pipe: Any) -> _OpenAIChat:
    """One chat engine per pipeline, kept across batches (so a warning is given once per job)."""
    chat = _CHATS.get(pipe)
    if chat is None:
        chat = _CHATS[pipe] = _OpenAIChat(pipe)
    return chat


def _describe_url(url: str) -> str:
    """An image URL for a message: never a data URL's data, a URL's user:password or query."""
    from runbatch.runtime.url_fetch import describe_url

    return describe_url(url)


def _load_image(url: Any) -> Any:
    """The image an ``image_url`` part names, as an RGB PIL image (as transformers loads it).

    Stage paths were replaced by data URLs when the row was read; http(s) URLs are fetched here, as
    RUNBATCH_FILE_FETCH_URLS allows (public hosts by default), which needs internet access from the
    runtime. Anything unreadable fails its row alone.
    """
    import http.client

    from PIL import Image, ImageOps

    from runbatch.runtime.url_fetch import UrlRefused, fetch_url

    if not isinstance(url, str) or not url.strip():
        raise InputRowError(
            _MESSAGES_INVALID,
            'An image_url part needs {"image_url": {"url": ...}} with a stage path, a data: URL or an '
            f"http(s) URL, got {type(url).__name__}.",
        )
    url = url.strip()
    image: Image.Image
    try:
        if url.startswith("data:"):
            header, _, payload = url.partition(",")
            if not header.endswith(";base64"):
                raise ValueError("only base64 data URLs (data:<mime>;base64,...) are supported")
            image = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
            image.load()
        elif url.startswith(("http://", "https://")):
            try:
                data = fetch_url(url, timeout=30)
            except UrlRefused as exc:
                raise InputRowError(
                    _IMAGE_INVALID, f"The image_url ({_describe_url(url)}) was not fetched: {exc}."
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                raise InputRowError(
                    _IMAGE_INVALID, f"The image_url ({_describe_url(url)}) could not be fetched: {exc}"
                ) from None
            image = Image.open(io.BytesIO(data))
            image.load()
        else:
            raise InputRowError(
                _MESSAGES_INVALID,
                f"The image_url {_describe_url(url)!r} is neither a stage path (@stage/path), a data: URL "
                "nor an http(s) URL. Name the image by one of these.",
            )
    except InputRowError:
        raise
    except Exception as exc:  # noqa: BLE001 - every unreadable image fails its row the same way
        raise InputRowError(
            _IMAGE_INVALID, f"The image_url ({_describe_url(url)}) is not a readable image: {exc}"
        ) from None
    return ImageOps.exif_transpose(image).convert("RGB")
