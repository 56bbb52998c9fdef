"""scikit-learn estimators and pipelines, pickled with cloudpickle."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cloudpickle
import numpy as np
import pandas as pd

from runbatch.ml.model._signatures.validate import rename_pandas_df
from runbatch.packager.explain import (
    EXPLAIN_METHOD,
    add_sklearn_explain,
    sklearn_explain_function,
    wants_explainability,
)
from runbatch.packager.handlers.base import (
    BASE_OPTIONS,
    InferFn,
    SaveRequest,
    as_frame,
    infer_estimator_signatures,
    pickled_by_value,
)
from runbatch.packager.meta import BlobMeta, ModelMeta

__all__ = ["SklearnHandler", "outputs_to_frame"]

DEFAULT_TARGET_METHODS = (
    "predict",
    "transform",
    "predict_proba",
    "predict_log_proba",
    "decision_function",
    "score_samples",
)


def outputs_to_frame(result: Any) -> pd.DataFrame:
    """A raw estimator result as a DataFrame with numeric column labels (or its own names)."""
    if isinstance(result, list) and result and isinstance(result[0], np.ndarray):
        return pd.DataFrame({i: (a.tolist() if a.ndim > 1 else a) for i, a in enumerate(result)})
    if isinstance(result, pd.DataFrame):
        return result
    return pd.DataFrame(result)


class SklearnHandler:
    handler_type = "sklearn"
    allowed_options = BASE_OPTIONS | {"target_methods"}

    def can_handle(self, model: Any) -> bool:
        try:
            import sklearn.base
            import sklearn.pipeline
        except ImportError:
            return False
        if not isinstance(model, sklearn.base.BaseEstimator | sklearn.pipeline.Pipeline):
            return False
        # XGBoost and LightGBM estimators are BaseEstimators too; their own handlers take them.
        module = type(model).__module__
        return not module.startswith(("xgboost", "lightgbm"))

    def save(self, model: Any, model_dir: Path, meta: ModelMeta, request: SaveRequest) -> BlobMeta:
        infer_estimator_signatures(
            model, meta, request, DEFAULT_TARGET_METHODS, lambda data: _model_input(model, data)
        )
        if wants_explainability(request.options) and not request.is_sub_model:
            add_sklearn_explain(model, model_dir, meta, request.sample_input_data)
        blob_dir = model_dir / "models" / request.name
        blob_dir.mkdir(parents=True, exist_ok=True)
        with pickled_by_value(model), open(blob_dir / "model.pkl", "wb") as f:
            cloudpickle.dump(model, f)
        import sklearn

        meta.pip_requirements.append(f"scikit-learn=={sklearn.__version__}")
        return BlobMeta(name=request.name, model_type=self.handler_type, path="model.pkl")

    def load(self, model_dir: Path, meta: ModelMeta, blob: BlobMeta) -> Any:
        with open(model_dir / "models" / blob.name / blob.path, "rb") as f:
            return cloudpickle.load(f)

    def inference_functions(self, model: Any, meta: ModelMeta) -> dict[str, InferFn]:
        def make(method: str) -> InferFn:
            fn = getattr(model, method)
            outputs = meta.signatures[method].outputs

            def call(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
                return rename_pandas_df(outputs_to_frame(fn(_model_input(model, df), **params)), outputs)

            return call

        fns = {m: make(m) for m in meta.signatures if m != EXPLAIN_METHOD}
        if EXPLAIN_METHOD in meta.signatures:
            explain = sklearn_explain_function(model, meta)
            fns[EXPLAIN_METHOD] = lambda df, params: explain(df)
        return fns


def _model_input(model: Any, data: Any) -> Any:
    """A DataFrame for estimators fitted with feature names, a plain array otherwise.

    Passing names to an estimator fitted on an array makes scikit-learn warn on every batch.
    """
    frame = as_frame(data)
    if hasattr(model, "feature_names_in_"):
        return frame
    return frame.to_numpy()
