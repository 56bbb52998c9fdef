"""The handler protocol and what all handlers share."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import cloudpickle
import pandas as pd

from runbatch.ml.model._signatures.infer import convert_local_data_to_df, infer_signature, truncate
from runbatch.packager.meta import BlobMeta, ModelMeta

__all__ = [
    "BASE_OPTIONS",
    "DEFAULT_CUDA_VERSION",
    "InferFn",
    "ModelHandler",
    "SaveRequest",
    "infer_estimator_signatures",
    "infer_method_signatures",
    "pickled_by_value",
    "pinned_requirements",
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

# Snowflake's model_env.DEFAULT_CUDA_VERSION: XGBoost, PyTorch and
# sentence-transformers models get a GPU runtime unless told otherwise.
DEFAULT_CUDA_VERSION = "12.4"

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


def infer_estimator_signatures(
    model: Any,
    meta: ModelMeta,
    request: SaveRequest,
    defaults: Iterable[str],
    model_input: Callable[[Any], Any],
) -> None:
    """Target methods of an estimator-like model and their signatures, from calling each method on
    ``model_input(sample)``; explicit signatures must name existing methods. Sub-models have none."""
    if request.is_sub_model:
        return
    methods = target_methods(model, request.options.get("target_methods"), defaults)
    if meta.signatures:
        target_methods(model, list(meta.signatures), ())
    infer_method_signatures(
        meta, methods, request.sample_input_data, lambda m, data: getattr(model, m)(model_input(data))
    )


def as_frame(data: Any) -> pd.DataFrame:
    return convert_local_data_to_df(data) if not isinstance(data, pd.DataFrame) else data


@contextlib.contextmanager
def pickled_by_value(model: Any) -> Iterator[None]:
    """While open, cloudpickle stores the model's class by value when its module is not installed.

    Classes of tests, notebooks and scripts' helper modules then travel with the model: the
    runtime that loads it may not be able to import them by name.
    """
    module = sys.modules.get(type(model).__module__)
    path = getattr(module, "__file__", None) or ""
    installed = "site-packages" in path or "dist-packages" in path
    by_value = module is not None and module.__name__ != "__main__" and not installed
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        yield
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def pinned_requirements(*distributions: str) -> list[str]:
    """``name==version`` for each installed distribution; absent ones are left out."""
    pins = []
    for name in distributions:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return pins
