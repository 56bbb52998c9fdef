"""The handler protocol and what all handlers share."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from runbatch.ml.model._signatures.infer import convert_local_data_to_df, infer_signature, truncate
from runbatch.packager.meta import BlobMeta, ModelMeta

__all__ = [
    "BASE_OPTIONS",
    "InferFn",
    "ModelHandler",
    "SaveRequest",
    "infer_method_signatures",
    "target_methods",
]

# Options every model type accepts (snowflake.ml's BaseModelSaveOption).
BASE_OPTIONS = frozenset(
    {
        "embed_local_ml_library",
        "relax_version",
        "function_type",
        "volatility",
        "method_options",
        "enable_explainability",
        "save_location",
        "model_init_once",
        "capture_sample_input_data",
    }
)

InferFn = Callable[[pd.DataFrame, dict[str, Any]], pd.DataFrame]
"""Calls one model method on a batch (columns named as the signature inputs) with resolved params."""


@dataclass
class SaveRequest:
    name: str
    sample_input_data: Any
    options: dict[str, Any]
    is_sub_model: bool = False


class ModelHandler(Protocol):
    handler_type: str
    allowed_options: frozenset[str]

    def can_handle(self, model: Any) -> bool: ...

    def save(self, model: Any, model_dir: Path, meta: ModelMeta, request: SaveRequest) -> BlobMeta:
        """Write the model under ``model_dir/models/<name>/`` and fill ``meta.signatures`` if needed."""
        ...

    def load(self, model_dir: Path, meta: ModelMeta, blob: BlobMeta) -> Any: ...

    def inference_functions(self, model: Any, meta: ModelMeta) -> dict[str, InferFn]:
        """One callable per target method in ``meta.signatures``."""
        ...


def target_methods(model: Any, requested: Sequence[str] | None, defaults: Iterable[str]) -> list[str]:
    methods = (
        list(requested)
        if requested is not None
        else [m for m in defaults if callable(getattr(model, m, None))]
    )
    for m in methods:
        if not callable(getattr(model, m, None)):
            raise ValueError(f"Target method {m} is not callable or does not exist in the model.")
    return methods


def infer_method_signatures(
    meta: ModelMeta, methods: Iterable[str], sample: Any, predict: Callable[[str, Any], Any]
) -> None:
    """Signatures for methods that have none, from calling each on the first 100 sample rows."""
    if meta.signatures:
        return
    if sample is None:
        raise ValueError(
            "(2110) Either of `signatures` or `sample_input_data` must be provided for this kind of model."
        )
    local = truncate(sample, 100)
    for method in methods:
        meta.signatures[method] = infer_signature(local, predict(method, local), input_data_limit=None)


def as_frame(data: Any) -> pd.DataFrame:
    return convert_local_data_to_df(data) if not isinstance(data, pd.DataFrame) else data
