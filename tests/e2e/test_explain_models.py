"""The explain function through the registry: show_functions, mv.run and a run_batch job."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import shap
import xgboost
from sklearn.linear_model import LogisticRegression

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session

POOL = "SYSTEM_COMPUTE_POOL_CPU"


def _data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"AGE": rng.normal(40, 10, rows), "INCOME": rng.normal(50, 15, rows)})
    return X, ((X.AGE - 40) / 10 + (X.INCOME - 50) / 15 > 0).to_numpy().astype(int)


def test_xgboost_explain_through_run_and_run_batch(embedded_session: Session, embedded_db: str) -> None:
    X, y = _data(300)
    model = xgboost.XGBClassifier(n_estimators=10, max_depth=3).fit(X, y)
    reg = Registry(embedded_session, database_name=embedded_db)
    mv = reg.log_model(
        model,
        model_name="CREDIT",
        version_name="V1",
        sample_input_data=X.head(50),
        options={"enable_explainability": True},
    )
    functions = {f["name"]: f for f in mv.show_functions()}
    assert sorted(functions) == ["EXPLAIN", "PREDICT", "PREDICT_PROBA"]
    assert functions["EXPLAIN"]["target_method"] == "explain"
    assert [f.name for f in functions["EXPLAIN"]["signature"].outputs] == [
        "AGE_explanation",
        "INCOME_explanation",
    ]

    new, _ = _data(120, seed=1)
    explainer = shap.TreeExplainer(model)
    expected = explainer.shap_values(new)
    local = mv.run(new, function_name="explain")
    assert isinstance(local, pd.DataFrame)
    assert list(local.columns) == ["AGE_explanation", "INCOME_explanation"]
    np.testing.assert_allclose(local.to_numpy(dtype=np.float64), expected, rtol=1e-6, atol=1e-7)
    margin = model.predict(new, output_margin=True)
    np.testing.assert_allclose(local.sum(axis=1), margin - explainer.expected_value, rtol=1e-5, atol=1e-5)

    data = new.assign(ID=np.arange(len(new), dtype=np.int64))
    job = mv.run_batch(
        embedded_session.create_dataframe(data),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/explained/"),
        job_spec=JobSpec(function_name="explain", max_batch_rows=50),
    )
    assert job.wait(180) == "DONE", job.get_logs()
    out = embedded_session.read.option("pattern", ".*\\.parquet").parquet("@DATA/explained/").to_pandas()
    out = out.sort_values("ID").reset_index(drop=True)
    assert list(out.columns) == ["AGE", "INCOME", "ID", "AGE_explanation", "INCOME_explanation"]
    np.testing.assert_allclose(
        out[["AGE_explanation", "INCOME_explanation"]].to_numpy(dtype=np.float64),
        expected,
        rtol=1e-6,
        atol=1e-7,
    )


def test_sklearn_explain_through_run(embedded_session: Session, embedded_db: str) -> None:
    X, y = _data(200)
    model = LogisticRegression().fit(X, y)
    reg = Registry(embedded_session, database_name=embedded_db)
    mv = reg.log_model(
        model, model_name="LR", sample_input_data=X.head(80), options={"enable_explainability": True}
    )
    new, _ = _data(30, seed=2)
    expected = shap.Explainer(model, X.head(80))(new)
    out = mv.run(new, function_name="explain")
    assert isinstance(out, pd.DataFrame)
    np.testing.assert_allclose(out.to_numpy(dtype=np.float64), expected.values, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(
        out.sum(axis=1), model.decision_function(new) - expected.base_values, rtol=1e-9, atol=1e-9
    )


def test_explain_is_not_there_unless_asked(embedded_session: Session, embedded_db: str) -> None:
    X, y = _data(100)
    reg = Registry(embedded_session, database_name=embedded_db)
    mv = reg.log_model(LogisticRegression().fit(X, y), model_name="PLAIN", sample_input_data=X.head(10))
    assert "EXPLAIN" not in {f["name"] for f in mv.show_functions()}
    with pytest.raises(ValueError, match="There is no method with name explain available"):
        mv.run(X, function_name="explain")
