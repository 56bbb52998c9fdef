"""The ``explain`` function: Shapley values per input feature, computed with ``shap``.

Mirrors snowflake.ml's packager: ``options={"enable_explainability": True}`` adds a function
named ``explain`` whose outputs are ``<feature>_explanation`` (DOUBLE, or a JSON object of
per-class values as STRING for multi-class classifiers). Tree libraries (XGBoost, LightGBM)
use ``shap.TreeExplainer`` on the model alone; scikit-learn models use ``shap.Explainer``
over the background data (the first rows of ``sample_input_data``, stored with the model).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from runbatch.ml.model._signatures.core import BaseFeatureSpec, DataType, FeatureSpec, ModelSignature
from runbatch.ml.model._signatures.validate import rename_pandas_df
from runbatch.packager.handlers.base import as_frame
from runbatch.packager.meta import ModelMeta

__all__ = [
    "EXPLAIN_METHOD",
    "add_explain_signature",
    "background_path",
    "check_explainability_supported",
    "explanations_frame",
    "load_background",
    "save_background",
    "sklearn_explain_fn",
    "tree_explain_fn",
    "wants_explainability",
]

EXPLAIN_METHOD = "explain"
EXPLAIN_ARTIFACTS_DIR = "explain_artifacts"
BG_DATA_FILE_SUFFIX = "_background_data.pqt"
# Snowflake stores at most this many background rows with the model.
BACKGROUND_ROWS_LIMIT = 1000
SHAP_REQUIREMENT = "shap>=0.46.0"

# Snowflake's messages for the model types that have no explain function.
_UNSUPPORTED = {
    "pytorch": "PyTorch",
    "torchscript": "Torch Script",
    "huggingface_pipeline": "huggingface",
    "sentence_transformers": "Sentence Transformer",
    "custom": "custom",
}


def wants_explainability(options: dict[str, Any]) -> bool:
    """Explainability is off unless asked for (Snowflake's default since snowflake-ml-python 1.47)."""
    return bool(options.get("enable_explainability", False))


def check_explainability_supported(model_type: str, options: dict[str, Any]) -> None:
    """Snowflake's NotImplementedError for model types that cannot be explained, before any saving."""
    if wants_explainability(options) and model_type in _UNSUPPORTED:
        raise NotImplementedError(f"Explainability is not supported for {_UNSUPPORTED[model_type]} model.")


def explain_target_method(meta: ModelMeta, candidates: Sequence[str]) -> str | None:
    """The first candidate the model has a signature for: its inputs are the explain inputs."""
    return next((m for m in candidates if m in meta.signatures), None)


def output_type(model: Any) -> DataType:
    """STRING (JSON per class) for multi-class classifiers, DOUBLE otherwise."""
    return DataType.STRING if _n_classes(model) > 2 else DataType.DOUBLE


def _n_classes(model: Any) -> int:
    predictor = model.steps[-1][1] if hasattr(model, "steps") else model
    n = getattr(predictor, "n_classes_", None)
    if isinstance(n, int | np.integer):
        return int(n)
    return len(getattr(predictor, "classes_", ()))


def add_explain_signature(
    meta: ModelMeta,
    target_method: str | None,
    dtype: DataType,
    output_names: Sequence[str] | None = None,
) -> None:
    """``explain`` takes the target method's inputs and returns one ``<name>_explanation`` per feature."""
    if target_method is None or target_method not in meta.signatures:
        raise ValueError(f"Signature for target method {target_method} is missing or no method to explain.")
    target = meta.signatures[target_method]
    names = list(output_names) if output_names is not None else [spec.name for spec in target.inputs]
    meta.signatures[EXPLAIN_METHOD] = ModelSignature(
        inputs=list(target.inputs),
        outputs=[FeatureSpec(dtype=dtype, name=f"{name}_explanation") for name in names],
        params=list(target.params),
    )
    meta.function_properties[EXPLAIN_METHOD] = {"PARTITIONED": False}
    if SHAP_REQUIREMENT not in meta.pip_requirements:
        meta.pip_requirements.append(SHAP_REQUIREMENT)


def background_path(model_dir: Path, name: str) -> Path:
    return model_dir / "models" / EXPLAIN_ARTIFACTS_DIR / f"{name}{BG_DATA_FILE_SUFFIX}"


def background_frame(sample_input_data: Any, inputs: Sequence[BaseFeatureSpec]) -> pd.DataFrame | None:
    """The sample data as a DataFrame named after the signature inputs (None without sample data)."""
    if sample_input_data is None:
        return None
    frame = as_frame(sample_input_data)
    return rename_pandas_df(frame, inputs)


def save_background(model_dir: Path, name: str, background: pd.DataFrame) -> None:
    path = background_path(model_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    background.head(BACKGROUND_ROWS_LIMIT).to_parquet(path)


def load_background(meta: ModelMeta) -> pd.DataFrame | None:
    """The stored background rows of a loaded model, if it was logged with them."""
    if meta.source_dir is None:
        return None
    path = background_path(meta.source_dir, meta.name)
    return pd.read_parquet(path) if path.is_file() else None


def warn_no_background() -> None:
    warnings.warn(
        "sample_input_data should be provided for better explainability results",
        category=UserWarning,
        stacklevel=3,
    )


def explanations_frame(model: Any, values: Any) -> pd.DataFrame:
    """SHAP values as one column per feature: the positive class for binary classifiers, a JSON
    object keyed by class for multi-class ones (Snowflake's layout)."""
    array = np.asarray(values.values if hasattr(values, "values") else values)
    if isinstance(values, list):
        array = np.stack([np.asarray(v) for v in values], axis=-1)
    if array.ndim != 3:
        return pd.DataFrame(array.astype(np.float64))
    predictor = model.steps[-1][1] if hasattr(model, "steps") else model
    classes = [str(c) for c in getattr(predictor, "classes_", range(array.shape[2]))]
    if array.shape[2] != len(classes):
        raise ValueError(f"Model has {len(classes)} classes but explanations have {array.shape[2]}")
    if len(classes) <= 2:
        # Index 1 is the positive class.
        return pd.DataFrame(array[:, :, 1].astype(np.float64))
    cells = [
        [
            json.dumps(dict(zip(classes, (float(v) for v in array[r, f]), strict=True)))
            for f in range(array.shape[1])
        ]
        for r in range(array.shape[0])
    ]
    return pd.DataFrame(cells)


def tree_explain_fn(
    model: Any, outputs: Sequence[BaseFeatureSpec], model_input: Callable[[pd.DataFrame], Any]
) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """XGBoost and LightGBM: ``shap.TreeExplainer`` on the model (path-dependent, no background),
    values in the model's margin space."""

    def explain(frame: pd.DataFrame) -> pd.DataFrame:
        import shap

        explainer = shap.TreeExplainer(model)
        return rename_pandas_df(explanations_frame(model, explainer.shap_values(model_input(frame))), outputs)

    return explain


def transforms_up_to_last_step(model: Any, data: pd.DataFrame) -> pd.DataFrame:
    """A pipeline's input as its final estimator sees it (named after the transformed features)."""
    if not hasattr(model, "steps") or len(model.steps) < 2:
        return data
    transformed = model[:-1].transform(data)
    if isinstance(transformed, pd.DataFrame):
        return transformed
    try:
        names = [str(n) for n in model[:-1].get_feature_names_out()]
    except (AttributeError, ValueError):
        names = [str(i) for i in range(np.asarray(transformed).shape[1])]
    return pd.DataFrame(np.asarray(transformed), columns=names, index=data.index)


def sklearn_explain_fn(model: Any, background: pd.DataFrame) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """scikit-learn: ``shap.Explainer`` on the final estimator over the (transformed) background;
    shap picks the linear or tree algorithm from the estimator."""
    import shap

    predictor = model.steps[-1][1] if hasattr(model, "steps") else model
    bg = transforms_up_to_last_step(model, background)

    def as_model_input(frame: pd.DataFrame) -> Any:
        # Estimators fitted on arrays warn on every call when given names.
        return frame if hasattr(predictor, "feature_names_in_") else frame.to_numpy()

    explainer = shap.Explainer(predictor, as_model_input(bg))

    def explain(frame: pd.DataFrame) -> pd.DataFrame:
        values = explainer(as_model_input(transforms_up_to_last_step(model, frame))).values
        return explanations_frame(model, values)

    return explain


def explained_feature_names(model: Any, background: pd.DataFrame) -> list[str]:
    return [str(c) for c in transforms_up_to_last_step(model, background).columns]


SKLEARN_EXPLAIN_TARGET_METHODS = ("predict_proba", "predict", "predict_log_proba")
TREE_EXPLAIN_TARGET_METHODS = ("predict", "predict_proba")


def add_sklearn_explain(model: Any, model_dir: Path, meta: ModelMeta, sample_input_data: Any) -> None:
    """Checks, signature and background data of a scikit-learn model's explain function."""
    if sample_input_data is None:
        raise ValueError("Sample input data is required to enable explainability.")
    target = explain_target_method(meta, SKLEARN_EXPLAIN_TARGET_METHODS)
    if target is None:
        raise ValueError(f"Signature for target method {target} is missing or no method to explain.")
    background = background_frame(sample_input_data, meta.signatures[target].inputs)
    assert background is not None
    try:
        names = explained_feature_names(model, background)
        sklearn_explain_fn(model, background)(background.head(5))
    except Exception:
        raise ValueError(
            "Explainability for this model is not supported. Please set `enable_explainability=False`"
        ) from None
    add_explain_signature(meta, target, output_type(model), names)
    save_background(model_dir, meta.name, background)


def add_tree_explain(model: Any, model_dir: Path, meta: ModelMeta, sample_input_data: Any) -> None:
    """Signature (and background data, when given) of an XGBoost or LightGBM explain function."""
    target = explain_target_method(meta, TREE_EXPLAIN_TARGET_METHODS)
    add_explain_signature(meta, target, output_type(model))
    assert target is not None
    background = background_frame(sample_input_data, meta.signatures[target].inputs)
    if background is None:
        warn_no_background()
    else:
        save_background(model_dir, meta.name, background)


def sklearn_explain_function(model: Any, meta: ModelMeta) -> Callable[[pd.DataFrame], pd.DataFrame]:
    background = load_background(meta)
    if background is None:
        raise ValueError(
            f"Model {meta.name} has an explain function but no background data under "
            f"models/{EXPLAIN_ARTIFACTS_DIR}/; log it again with sample_input_data."
        )
    explain = sklearn_explain_fn(model, background)
    outputs = meta.signatures[EXPLAIN_METHOD].outputs
    return lambda frame: rename_pandas_df(explain(frame), outputs)
