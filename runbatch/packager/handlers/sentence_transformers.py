"""sentence-transformers models: saved with ``model.save()``, loaded with ``SentenceTransformer(path)``.

As in Snowflake the signature needs no sample: one STRING input ``sentence``, one DOUBLE
vector ``output`` of the embedding dimension, and the runtime params ``batch_size`` (default
from the ``batch_size`` option) and, from sentence-transformers 5, ``truncate_dim``.
Null sentences give null embeddings.
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from runbatch.ml.model._signatures.core import (
    BaseParamSpec,
    DataType,
    FeatureSpec,
    ModelSignature,
    ParamSpec,
)
from runbatch.packager.handlers.base import (
    BASE_OPTIONS,
    DEFAULT_CUDA_VERSION,
    InferFn,
    SaveRequest,
    as_frame,
    infer_method_signatures,
    pinned_requirements,
    target_methods,
)
from runbatch.packager.meta import BlobMeta, ModelMeta

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

__all__ = ["SentenceTransformersHandler"]

logger = logging.getLogger(__name__)

ALLOWED_TARGET_METHODS = ["encode", "encode_query", "encode_document", "encode_queries", "encode_documents"]
HANDLER_VERSION = "2024-03-15"
MODEL_DIR = "model"


def _version_at_least(major: int) -> bool:
    try:
        version = metadata.version("sentence-transformers")
    except metadata.PackageNotFoundError:
        return False
    return int(version.split(".")[0]) >= major


def _runtime_params(batch_size: int | None, with_truncate_dim: bool) -> list[ParamSpec]:
    params = [ParamSpec("batch_size", DataType.INT64, batch_size)]
    if with_truncate_dim:
        params.append(ParamSpec("truncate_dim", DataType.INT64, None))
    return params


def _check_batch_size(value: Any) -> int | None:
    if value is not None and (not isinstance(value, int) or value <= 0):
        raise ValueError("batch_size must be a positive integer")
    return value


def _model_truncate_dim(model: SentenceTransformer) -> int | None:
    value = getattr(model, "truncate_dim", None)
    if value is not None and (not isinstance(value, int) or value <= 0):
        raise ValueError("truncate_dim must be a positive integer")
    return value


def _embedding_dim(model: SentenceTransformer) -> int | None:
    # sentence-transformers 5.7 renamed the method and warns on the old name.
    getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
    dim = getter()
    return None if dim is None else int(dim)


def _resolve_methods(model: SentenceTransformer, requested: Sequence[str] | None) -> list[str]:
    methods = target_methods(model, requested, ALLOWED_TARGET_METHODS)
    if not methods:
        raise ValueError("At least one target method must be specified.")
    unsupported = set(methods) - set(ALLOWED_TARGET_METHODS)
    if unsupported:
        raise ValueError(
            f"Unsupported model methods: {sorted(unsupported)}. "
            f"SentenceTransformer model methods must be one of: {ALLOWED_TARGET_METHODS}."
        )
    return methods


def _validate_signatures(signatures: dict[str, ModelSignature]) -> None:
    if not signatures:
        raise ValueError("At least one signature must be provided.")
    unsupported = set(signatures) - set(ALLOWED_TARGET_METHODS)
    if unsupported:
        raise ValueError(
            f"Unsupported target methods: {sorted(unsupported)}. Supported methods are: {ALLOWED_TARGET_METHODS}."
        )
    for method, sig in signatures.items():
        if len(sig.inputs) != 1:
            raise ValueError(f"SentenceTransformer method '{method}' must have exactly 1 input column.")
        if len(sig.outputs) != 1:
            raise ValueError(f"SentenceTransformer method '{method}' must have exactly 1 output column.")
        feature = sig.inputs[0]
        if not isinstance(feature, FeatureSpec):
            raise ValueError(
                f"SentenceTransformer method '{method}' requires a FeatureSpec input, got {type(feature).__name__}."
            )
        if feature.shape is not None:
            raise ValueError(f"SentenceTransformer method '{method}' does not support input shape.")
        if feature.dtype is not DataType.STRING:
            raise ValueError(
                f"SentenceTransformer method '{method}' only accepts STRING input, got {feature.dtype.name}."
            )


def _add_params(meta: ModelMeta, params: list[ParamSpec]) -> None:
    for method, sig in list(meta.signatures.items()):
        missing: list[BaseParamSpec] = [p for p in params if all(q.name != p.name for q in sig.params)]
        if missing:
            meta.signatures[method] = ModelSignature(sig.inputs, sig.outputs, [*sig.params, *missing])


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, list | dict) or hasattr(value, "shape"):
        return False
    return bool(pd.isna(value))


def _encode(encode: Callable[..., Any], sentences: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    """One embedding (a list of floats) per sentence; a null sentence is not encoded and gives None."""
    present = [i for i, s in enumerate(sentences) if not _is_null(s)]
    out: list[Any] = [None] * len(sentences)
    if present:
        embeddings = encode([sentences[i] for i in present], **kwargs).tolist()
        for i, embedding in zip(present, embeddings, strict=True):
            out[i] = embedding
    return out


def _sample_prediction(model: SentenceTransformer, batch_size: int | None) -> Callable[[str, Any], Any]:
    def predict(method: str, data: Any) -> pd.DataFrame:
        frame = as_frame(data)
        if frame.shape[1] != 1:
            raise ValueError(
                "SentenceTransformer can only accept 1 input column when converted to pd.DataFrame"
            )
        kwargs = {} if batch_size is None else {"batch_size": batch_size}
        return pd.DataFrame({0: _encode(getattr(model, method), frame.iloc[:, 0].tolist(), kwargs)})

    return predict


class SentenceTransformersHandler:
    handler_type = "sentence_transformers"
    allowed_options = BASE_OPTIONS | {"target_methods", "cuda_version", "batch_size"}

    def can_handle(self, model: Any) -> bool:
        if "sentence_transformers" not in sys.modules:
            return False
        from sentence_transformers import SentenceTransformer

        return isinstance(model, SentenceTransformer)

    def save(self, model: Any, model_dir: Path, meta: ModelMeta, request: SaveRequest) -> BlobMeta:
        options = request.options
        if options.get("enable_explainability"):
            raise NotImplementedError("Explainability is not supported for Sentence Transformer model.")
        batch_size = _check_batch_size(options.get("batch_size"))
        truncate_dim = _model_truncate_dim(model)
        if not request.is_sub_model:
            self._set_signatures(model, meta, request, batch_size)
        blob_dir = model_dir / "models" / request.name
        blob_dir.mkdir(parents=True, exist_ok=True)
        model.save(str(blob_dir / MODEL_DIR))
        blob_options: dict[str, Any] = {}
        name_or_path = getattr(getattr(model, "transformers_model", None), "name_or_path", None)
        if isinstance(name_or_path, str) and name_or_path:
            blob_options["model"] = name_or_path
        if truncate_dim is not None:
            blob_options["truncate_dim"] = truncate_dim
        if batch_size is not None:
            blob_options["batch_size"] = batch_size
        meta.pip_requirements.extend(
            pinned_requirements("sentence-transformers", "transformers", "tokenizers", "torch")
        )
        cuda_version = options.get("cuda_version", DEFAULT_CUDA_VERSION)
        meta.cuda_version = None if cuda_version is None else str(cuda_version)
        return BlobMeta(
            name=request.name,
            model_type=self.handler_type,
            path=MODEL_DIR,
            handler_version=HANDLER_VERSION,
            options=blob_options,
        )

    def _set_signatures(
        self, model: SentenceTransformer, meta: ModelMeta, request: SaveRequest, batch_size: int | None
    ) -> None:
        """Explicit signatures are only checked; a sample gives inferred ones; otherwise they are built."""
        methods = _resolve_methods(model, request.options.get("target_methods"))
        params = _runtime_params(batch_size, _version_at_least(5))
        if meta.signatures:
            if batch_size is not None:
                logger.warning(
                    "batch_size option will not be added as a configurable parameter to explicit signatures. "
                    "To make batch_size configurable at runtime, add a batch_size ParamSpec to your signature."
                )
            target_methods(model, list(meta.signatures), ())
            _validate_signatures(meta.signatures)
            return
        if request.sample_input_data is not None:
            infer_method_signatures(
                meta, methods, request.sample_input_data, _sample_prediction(model, batch_size)
            )
            _validate_signatures(meta.signatures)
            _add_params(meta, params)
            return
        dim = _embedding_dim(model)
        if dim is None:
            raise ValueError(
                "Unable to determine the model's embedding dimension. "
                "Please provide sample_input_data or signatures explicitly."
            )
        for method in methods:
            meta.signatures[method] = ModelSignature(
                [FeatureSpec("sentence", DataType.STRING)],
                [FeatureSpec("output", DataType.DOUBLE, shape=(dim,))],
                list(params),
            )

    def load(self, model_dir: Path, meta: ModelMeta, blob: BlobMeta) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer

        kwargs: dict[str, Any] = {}
        if "trust_remote_code" in inspect.signature(SentenceTransformer).parameters:
            kwargs["trust_remote_code"] = True
        if blob.options.get("truncate_dim") is not None:
            kwargs["truncate_dim"] = blob.options["truncate_dim"]
        return SentenceTransformer(
            str(model_dir / "models" / blob.name / blob.path),
            device="cuda" if torch.cuda.is_available() else "cpu",
            **kwargs,
        )

    def inference_functions(self, model: Any, meta: ModelMeta) -> dict[str, InferFn]:
        default_batch_size = meta.models[meta.name].options.get("batch_size")

        def make(method: str) -> InferFn:
            if method not in ALLOWED_TARGET_METHODS:
                raise ValueError(f"{method} is currently not supported.")
            encode = getattr(model, method)
            signature = meta.signatures[method]
            defaults = {p.name: p.default_value for p in signature.params}
            output = signature.outputs[0].name

            def call(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
                kwargs: dict[str, Any] = {}
                batch_size = params.get("batch_size", defaults.get("batch_size", default_batch_size))
                if batch_size is not None:
                    kwargs["batch_size"] = batch_size
                if "truncate_dim" in defaults:
                    truncate_dim = params.get("truncate_dim", defaults["truncate_dim"])
                    if truncate_dim is not None:
                        kwargs["truncate_dim"] = truncate_dim
                return pd.DataFrame({output: _encode(encode, df.iloc[:, 0].tolist(), kwargs)})

            return call

        return {m: make(m) for m in meta.signatures}
