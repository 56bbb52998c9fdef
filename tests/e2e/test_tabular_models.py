"""XGBoost and LightGBM models through the registry: run_batch, local run, load and export."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
import xgboost

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.packager import load_model
from runbatch.snowpark import Session

POOL = "SYSTEM_COMPUTE_POOL_CPU"


def _data(rows: int, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "X1": rng.normal(size=rows),
            "X2": rng.normal(size=rows),
            "COLOUR": pd.Categorical(rng.choice(["red", "green", "blue"], rows)),
        }
    )
    return X, ((X.COLOUR == "green") | (X.X1 + X.X2 > 1)).to_numpy().astype(int)


@pytest.fixture(scope="module")
def db(embedded_session: Session) -> str:
    """One database for the module: each model is logged once and shared by the tests."""
    name = f"T_{uuid.uuid4().hex[:10].upper()}"
    embedded_session.sql(f"CREATE DATABASE {name}").collect()
    embedded_session.sql("CREATE STAGE DATA").collect()
    return name


@pytest.fixture(autouse=True)
def _current_db(embedded_session: Session, db: str) -> None:
    embedded_session.use_database(db)


@pytest.fixture(scope="module")
def logged(embedded_session: Session, db: str) -> dict[str, tuple[Any, Any]]:
    X, y = _data(300)
    numeric = X[["X1", "X2"]]
    models: dict[str, Any] = {
        "XGB_CLF": xgboost.XGBClassifier(n_estimators=8, max_depth=3, enable_categorical=True).fit(X, y),
        "XGB_BST": xgboost.train({"max_depth": 2}, xgboost.DMatrix(numeric, label=numeric.X1 * 2), 5),
        "LGB_CLF": lightgbm.LGBMClassifier(n_estimators=8, verbose=-1).fit(numeric, y),
        "LGB_BST": lightgbm.train(
            {"objective": "binary", "verbose": -1, "min_data_in_leaf": 5}, lightgbm.Dataset(X, label=y), 8
        ),
    }
    reg = Registry(embedded_session, database_name=db)
    samples = {"XGB_CLF": X, "XGB_BST": numeric, "LGB_CLF": numeric, "LGB_BST": X}
    return {
        name: (model, reg.log_model(model, model_name=name, sample_input_data=samples[name].head(20)))
        for name, model in models.items()
    }


def _run_batch(session: Session, mv: Any, data: pd.DataFrame, function: str, location: str) -> pd.DataFrame:
    job = mv.run_batch(
        session.create_dataframe(data),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location=location),
        job_spec=JobSpec(function_name=function, max_batch_rows=50),
    )
    assert job.wait(120) == "DONE", job.get_logs()
    out = session.read.option("pattern", ".*\\.parquet").parquet(location).to_pandas()
    return out.sort_values("ID").reset_index(drop=True)


def test_xgboost_classifier_batch_with_a_categorical_column(embedded_session: Session, logged) -> None:  # type: ignore[no-untyped-def]
    model, mv = logged["XGB_CLF"]
    X, _ = _data(230, seed=1)
    # Text as a warehouse table holds it, sorted so that batches of 50 rows see different subsets
    # of the colours (and so code them differently).
    X = X.sort_values("COLOUR", key=lambda c: c.astype(str), kind="stable").reset_index(drop=True)
    data = X.assign(COLOUR=X.COLOUR.astype(str))
    data.insert(0, "ID", np.arange(len(data), dtype=np.int64))
    out = _run_batch(embedded_session, mv, data, "predict_proba", "@DATA/xgb/")
    assert list(out.columns) == ["ID", "X1", "X2", "COLOUR", "output_feature_0", "output_feature_1"]
    assert out.output_feature_0.dtype == np.float32
    np.testing.assert_array_equal(
        out[["output_feature_0", "output_feature_1"]].to_numpy(), model.predict_proba(X)
    )
    local = mv.run(data[["X1", "X2", "COLOUR"]], function_name="predict")
    assert list(local.columns) == ["output_feature_0"]
    assert local.output_feature_0.tolist() == model.predict(X).tolist()


def test_lightgbm_classifier_batch(embedded_session: Session, logged) -> None:  # type: ignore[no-untyped-def]
    model, mv = logged["LGB_CLF"]
    X, _ = _data(120, seed=2)
    data = X[["X1", "X2"]].copy()
    data.insert(0, "ID", np.arange(len(data), dtype=np.int64))
    out = _run_batch(embedded_session, mv, data, "predict", "@DATA/lgb/")
    assert list(out.columns) == ["ID", "X1", "X2", "output_feature_0"]
    assert out.output_feature_0.tolist() == model.predict(X[["X1", "X2"]]).tolist()
    proba = mv.run(X[["X1", "X2"]], function_name="predict_proba")
    assert list(proba.columns) == ["output_feature_0", "output_feature_1"]
    np.testing.assert_array_equal(proba.to_numpy(), model.predict_proba(X[["X1", "X2"]]))


def test_boosters_run_locally(logged) -> None:  # type: ignore[no-untyped-def]
    X, _ = _data(40, seed=3)
    xgb_model, xgb_mv = logged["XGB_BST"]
    out = xgb_mv.run(X[["X1", "X2"]])
    assert list(out.columns) == ["output_feature_0"]
    np.testing.assert_array_equal(
        out.output_feature_0.to_numpy(), xgb_model.predict(xgboost.DMatrix(X[["X1", "X2"]]))
    )
    lgb_model, lgb_mv = logged["LGB_BST"]
    out = lgb_mv.run(X.assign(COLOUR=X.COLOUR.astype(str)))
    np.testing.assert_array_equal(out.output_feature_0.to_numpy(), lgb_model.predict(X))


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("XGB_CLF", xgboost.XGBClassifier),
        ("XGB_BST", xgboost.Booster),
        ("LGB_CLF", lightgbm.LGBMClassifier),
        ("LGB_BST", lightgbm.Booster),
    ],
)
def test_load_and_export_keep_the_class(logged, tmp_path: Path, name: str, cls: type) -> None:  # type: ignore[no-untyped-def]
    model, mv = logged[name]
    with pytest.warns(RuntimeWarning):
        loaded = mv.load()
    assert type(loaded) is cls
    mv.export(str(tmp_path / "export"))
    exported, meta = load_model(tmp_path / "export")
    assert type(exported) is cls
    assert meta.models[meta.name].model_type == ("xgboost" if name.startswith("XGB") else "lightgbm")
    X, _ = _data(25, seed=4)
    features = X if name in ("XGB_CLF", "LGB_BST") else X[["X1", "X2"]]
    if cls is xgboost.Booster:
        np.testing.assert_array_equal(
            exported.predict(xgboost.DMatrix(features)), model.predict(xgboost.DMatrix(features))
        )
    else:
        np.testing.assert_array_equal(exported.predict(features), model.predict(features))
