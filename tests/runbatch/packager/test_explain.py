"""The explain function of scikit-learn, XGBoost and LightGBM models against shap called directly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import shap
import xgboost
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from runbatch.inference.function import LoadedModel
from runbatch.ml.model import custom_model
from runbatch.packager import save_model

EXPLAIN = {"enable_explainability": True}


def _data(rows: int = 200, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["A", "B", "C"])
    return X, (X.A + 0.5 * X.B - X.C > 0).astype(int)


def _explain(
    model: Any, tmp_path: Path, background: pd.DataFrame, X: pd.DataFrame
) -> tuple[Any, pd.DataFrame]:
    meta = save_model(model, tmp_path, name="M", sample_input_data=background, options=EXPLAIN)
    loaded = LoadedModel.from_dir(tmp_path)
    return meta, loaded.function("explain")(X, {})


def test_xgboost_classifier_explanations_are_tree_shap_in_margin_space(tmp_path: Path) -> None:
    X, y = _data()
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    meta, out = _explain(model, tmp_path, X.head(50), X.head(40))
    assert [f.name for f in meta.signatures["explain"].outputs] == [
        "A_explanation",
        "B_explanation",
        "C_explanation",
    ]
    assert [f.dtype.name for f in meta.signatures["explain"].outputs] == ["DOUBLE"] * 3
    assert meta.function_properties["explain"] == {"PARTITIONED": False}
    assert "shap>=0.46.0" in meta.pip_requirements
    explainer = shap.TreeExplainer(model)
    np.testing.assert_allclose(out.to_numpy(), explainer.shap_values(X.head(40)), rtol=1e-6, atol=1e-7)
    margin = model.predict(X.head(40), output_margin=True)
    np.testing.assert_allclose(out.sum(axis=1), margin - explainer.expected_value, rtol=1e-5, atol=1e-5)


def test_lightgbm_regressor_rows_sum_to_prediction_minus_expected_value(tmp_path: Path) -> None:
    X, _ = _data()
    target = 3 * X.A - X.B
    model = lightgbm.LGBMRegressor(n_estimators=20, verbose=-1).fit(X, target)
    meta, out = _explain(model, tmp_path, X.head(50), X.head(30))
    explainer = shap.TreeExplainer(model)
    np.testing.assert_allclose(out.to_numpy(), explainer.shap_values(X.head(30)), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(
        out.sum(axis=1), model.predict(X.head(30)) - explainer.expected_value, rtol=1e-6, atol=1e-6
    )
    assert (tmp_path / "model" / "models" / "explain_artifacts" / "M_background_data.pqt").is_file()


def test_sklearn_linear_model_uses_the_background(tmp_path: Path) -> None:
    X, y = _data()
    model = LogisticRegression().fit(X, y)
    background = X.head(60)
    _, out = _explain(model, tmp_path, background, X.tail(25))
    explainer = shap.Explainer(model, background)
    expected = explainer(X.tail(25))
    np.testing.assert_allclose(out.to_numpy(), expected.values, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        out.sum(axis=1), model.decision_function(X.tail(25)) - expected.base_values, rtol=1e-9, atol=1e-9
    )
    # The background stored with the model is the one given (Snowflake keeps at most 1000 rows).
    stored = pd.read_parquet(tmp_path / "model" / "models" / "explain_artifacts" / "M_background_data.pqt")
    pd.testing.assert_frame_equal(stored, background)


def test_sklearn_tree_regressor_and_pipeline(tmp_path: Path) -> None:
    X, _ = _data()
    target = X.A * 2 + X.C
    forest = RandomForestRegressor(n_estimators=5, max_depth=3, random_state=0).fit(X, target)
    _, out = _explain(forest, tmp_path / "forest", X.head(40), X.tail(10))
    expected = shap.Explainer(forest, X.head(40))(X.tail(10))
    np.testing.assert_allclose(out.to_numpy(), expected.values, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        out.sum(axis=1), forest.predict(X.tail(10)) - expected.base_values, rtol=1e-6, atol=1e-6
    )
    pipeline = make_pipeline(StandardScaler(), LinearRegression()).fit(X, target)
    meta, piped = _explain(pipeline, tmp_path / "pipe", X.head(40), X.tail(10))
    # The final estimator sees the scaled features; their names are the transformer's output names.
    assert [f.name for f in meta.signatures["explain"].outputs] == [
        "A_explanation",
        "B_explanation",
        "C_explanation",
    ]
    scaled = pd.DataFrame(pipeline[:-1].transform(X), columns=["A", "B", "C"])
    direct = shap.Explainer(pipeline[-1], scaled.head(40))(scaled.tail(10).to_numpy())
    np.testing.assert_allclose(piped.to_numpy(), direct.values, rtol=1e-9, atol=1e-12)


def test_multi_class_explanations_are_json_per_class(tmp_path: Path) -> None:
    X, _ = _data()
    y = np.digitize(X.A, [-0.5, 0.5])
    model = RandomForestClassifier(n_estimators=4, max_depth=3, random_state=0).fit(X, y)
    meta, out = _explain(model, tmp_path, X.head(30), X.tail(3))
    assert [f.dtype.name for f in meta.signatures["explain"].outputs] == ["STRING"] * 3
    values = shap.Explainer(model, X.head(30))(X.tail(3)).values  # rows, features, classes
    cell = json.loads(str(out.iloc[1, 2]))
    assert list(cell) == ["0", "1", "2"]
    np.testing.assert_allclose([cell[k] for k in ("0", "1", "2")], values[1, 2, :], rtol=1e-9)


def test_explainability_is_off_by_default(tmp_path: Path) -> None:
    X, y = _data()
    meta = save_model(LogisticRegression().fit(X, y), tmp_path, name="M", sample_input_data=X.head(5))
    assert "explain" not in meta.signatures


class _Echo(custom_model.CustomModel):
    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        return X


@pytest.mark.parametrize(
    ("model", "sample", "error", "message"),
    [
        (
            _Echo(custom_model.ModelContext()),
            pd.DataFrame({"A": [1.0]}),
            NotImplementedError,
            "Explainability is not supported for custom model.",
        ),
        (
            LogisticRegression().fit(*_data()),
            None,
            ValueError,
            "Sample input data is required to enable explainability.",
        ),
        (
            KNeighborsClassifier().fit(*_data()),
            _data()[0].head(10),
            ValueError,
            "Explainability for this model is not supported. Please set `enable_explainability=False`",
        ),
    ],
    ids=["custom", "no-sample", "knn"],
)
def test_unsupported_models_get_snowflakes_errors(
    tmp_path: Path, model: Any, sample: Any, error: type[Exception], message: str
) -> None:
    signatures = None
    if sample is None:
        from runbatch.ml.model.model_signature import infer_signature

        X, _ = _data()
        signatures = {"predict": infer_signature(X.head(20), model.predict(X.head(20)))}
    with pytest.raises(error) as info:
        save_model(
            model, tmp_path, name="M", sample_input_data=sample, signatures=signatures, options=EXPLAIN
        )
    assert str(info.value) == message
