"""XGBoost estimators and Boosters, saved in XGBoost's own UBJSON format as Snowflake does.

The blob options record the estimator's class name, so loading rebuilds an XGBClassifier as
an XGBClassifier and a Booster as a Booster; Boosters are fed through a DMatrix.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runbatch.ml.model._signatures.validate import rename_pandas_df
from runbatch.packager.explain import EXPLAIN_METHOD, add_tree_explain, tree_explain_fn, wants_explainability
from runbatch.packager.handlers.base import (
    BASE_OPTIONS,
    DEFAULT_CUDA_VERSION,
    InferFn,
    SaveRequest,
    as_frame,
    infer_estimator_signatures,
    pinned_requirements,
)
from runbatch.packager.handlers.sklearn import outputs_to_frame
from runbatch.packager.meta import BlobMeta, ModelMeta

if TYPE_CHECKING:
    import xgboost

__all__ = ["XGBoostHandler", "categorical_frame"]

DEFAULT_TARGET_METHODS = ("predict", "predict_proba")
HANDLER_VERSION = "2023-12-01"
MODEL_FILE = "model.ubj"


def categorical_frame(frame: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """``frame`` with its text columns as pandas categories, and whether any column is categorical.

    Tree libraries take categories, not strings; they map a batch's categories back onto the
    ones seen in training, so each batch may hold any subset of them.
    """
    converted: dict[Any, pd.Series] = {}
    categorical = False
    for column, dtype in frame.dtypes.items():
        if isinstance(dtype, pd.CategoricalDtype):
            categorical = True
        elif not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)):
            converted[column] = frame[column].astype("category")
    if not converted:
        return frame, categorical
    columns = {c: converted.get(c, frame[c]) for c in frame.columns}
    return pd.DataFrame(columns, index=frame.index), True


def _model_input(model: Any, data: Any) -> Any:
    import xgboost

    frame: Any = data
    categorical = False
    if not isinstance(data, np.ndarray):
        frame, categorical = categorical_frame(as_frame(data))
    if isinstance(model, xgboost.Booster):
        return xgboost.DMatrix(frame, enable_categorical=categorical)
    return frame


def _estimator_class(name: str | None) -> type[xgboost.Booster | xgboost.XGBModel]:
    import xgboost

    if not name:
        raise ValueError("Missing field `xgb_estimator_type` in model blob metadata for type `xgboost`")
    cls = getattr(xgboost, name, None)
    if not (isinstance(cls, type) and issubclass(cls, xgboost.Booster | xgboost.XGBModel)):
        raise ValueError("Type of XGB estimator is illegal.")
    return cls


class XGBoostHandler:
    handler_type = "xgboost"
    allowed_options = BASE_OPTIONS | {"target_methods", "cuda_version", "use_gpu"}

    def can_handle(self, model: Any) -> bool:
        if "xgboost" not in sys.modules:
            return False
        import xgboost

        return isinstance(model, xgboost.Booster | xgboost.XGBModel)

    def save(self, model: Any, model_dir: Path, meta: ModelMeta, request: SaveRequest) -> BlobMeta:
        infer_estimator_signatures(
            model, meta, request, DEFAULT_TARGET_METHODS, lambda data: _model_input(model, data)
        )
        if wants_explainability(request.options) and not request.is_sub_model:
            add_tree_explain(model, model_dir, meta, request.sample_input_data)
        blob_dir = model_dir / "models" / request.name
        blob_dir.mkdir(parents=True, exist_ok=True)
        model.save_model(str(blob_dir / MODEL_FILE))
        meta.pip_requirements.extend(pinned_requirements("scikit-learn", "xgboost"))
        cuda_version = request.options.get("cuda_version", DEFAULT_CUDA_VERSION)
        meta.cuda_version = None if cuda_version is None else str(cuda_version)
        return BlobMeta(
            name=request.name,
            model_type=self.handler_type,
            path=MODEL_FILE,
            handler_version=HANDLER_VERSION,
            options={
                "xgb_estimator_type": type(model).__name__,
                "enable_categorical": bool(getattr(model, "enable_categorical", False)),
            },
        )

    def load(self, model_dir: Path, meta: ModelMeta, blob: BlobMeta) -> Any:
        import xgboost

        model = _estimator_class(blob.options.get("xgb_estimator_type"))()
        model.load_model(str(model_dir / "models" / blob.name / blob.path))
        if isinstance(model, xgboost.XGBModel):
            model.enable_categorical = bool(blob.options.get("enable_categorical", False))
        return model

    def inference_functions(self, model: Any, meta: ModelMeta) -> dict[str, InferFn]:
        def make(method: str) -> InferFn:
            fn = getattr(model, method)
            outputs = meta.signatures[method].outputs

            def call(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
                return rename_pandas_df(outputs_to_frame(fn(_model_input(model, df), **params)), outputs)

            return call

        fns = {m: make(m) for m in meta.signatures if m != EXPLAIN_METHOD}
        if EXPLAIN_METHOD in meta.signatures:
            explain = tree_explain_fn(
                model, meta.signatures[EXPLAIN_METHOD].outputs, lambda df: _model_input(model, df)
            )
            fns[EXPLAIN_METHOD] = lambda df, params: explain(df)
        return fns
