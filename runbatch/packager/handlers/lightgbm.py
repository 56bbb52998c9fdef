"""LightGBM estimators and Boosters, pickled with cloudpickle as Snowflake does.

The blob options record the estimator's class name; loading checks the unpickled object is
still of that class.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

from runbatch.ml.model._signatures.validate import rename_pandas_df
from runbatch.packager.explain import EXPLAIN_METHOD, add_tree_explain, tree_explain_fn, wants_explainability
from runbatch.packager.handlers.base import (
    BASE_OPTIONS,
    InferFn,
    SaveRequest,
    as_frame,
    infer_estimator_signatures,
    pinned_requirements,
)
from runbatch.packager.handlers.sklearn import outputs_to_frame
from runbatch.packager.handlers.xgboost import categorical_frame
from runbatch.packager.meta import BlobMeta, ModelMeta

__all__ = ["LightGBMHandler"]

DEFAULT_TARGET_METHODS = ("predict", "predict_proba")
HANDLER_VERSION = "2024-03-19"
MODEL_FILE = "model.pkl"


def _model_input(data: Any) -> Any:
    """Arrays as they are; frames with text columns as categories, which LightGBM maps back
    onto the categories it recorded in training (it rejects text columns outright)."""
    if isinstance(data, np.ndarray):
        return data
    frame, _ = categorical_frame(as_frame(data))
    return frame


def _estimator_class(name: str | None) -> type[Any]:
    import lightgbm

    if not name:
        raise ValueError("Missing field `lightgbm_estimator_type` in model blob metadata for type `lightgbm`")
    cls = getattr(lightgbm, name, None)
    if not isinstance(cls, type):
        raise ValueError("Type of LightGBM estimator is not supported.")
    return cls


class LightGBMHandler:
    handler_type = "lightgbm"
    allowed_options = BASE_OPTIONS | {"target_methods"}

    def can_handle(self, model: Any) -> bool:
        if "lightgbm" not in sys.modules:
            return False
        import lightgbm

        return isinstance(model, lightgbm.Booster | lightgbm.LGBMModel)

    def save(self, model: Any, model_dir: Path, meta: ModelMeta, request: SaveRequest) -> BlobMeta:
        infer_estimator_signatures(
            model, meta, request, DEFAULT_TARGET_METHODS, lambda data: _model_input(data)
        )
        if wants_explainability(request.options) and not request.is_sub_model:
            add_tree_explain(model, model_dir, meta, request.sample_input_data)
        blob_dir = model_dir / "models" / request.name
        blob_dir.mkdir(parents=True, exist_ok=True)
        with open(blob_dir / MODEL_FILE, "wb") as f:
            cloudpickle.dump(model, f)
        meta.pip_requirements.extend(pinned_requirements("lightgbm", "scikit-learn"))
        return BlobMeta(
            name=request.name,
            model_type=self.handler_type,
            path=MODEL_FILE,
            handler_version=HANDLER_VERSION,
            options={"lightgbm_estimator_type": type(model).__name__},
        )

    def load(self, model_dir: Path, meta: ModelMeta, blob: BlobMeta) -> Any:
        import lightgbm

        cls = _estimator_class(blob.options.get("lightgbm_estimator_type"))
        with open(model_dir / "models" / blob.name / blob.path, "rb") as f:
            model = cloudpickle.load(f)
        if not isinstance(model, cls) or not isinstance(model, lightgbm.Booster | lightgbm.LGBMModel):
            raise ValueError(
                f"The saved LightGBM model is a {type(model).__name__}, not the {cls.__name__} its metadata records."
            )
        return model

    def inference_functions(self, model: Any, meta: ModelMeta) -> dict[str, InferFn]:
        def make(method: str) -> InferFn:
            fn = getattr(model, method)
            outputs = meta.signatures[method].outputs

            def call(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
                return rename_pandas_df(outputs_to_frame(fn(_model_input(df), **params)), outputs)

            return call

        fns = {m: make(m) for m in meta.signatures if m != EXPLAIN_METHOD}
        if EXPLAIN_METHOD in meta.signatures:
            explain = tree_explain_fn(model, meta.signatures[EXPLAIN_METHOD].outputs, _model_input)
            fns[EXPLAIN_METHOD] = lambda df, params: explain(df)
        return fns
