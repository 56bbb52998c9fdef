"""The xgboost and lightgbm handlers: files, metadata, signatures, load and inference functions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import sklearn
import xgboost
import yaml

from runbatch.inference import LoadedModel
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature
from runbatch.packager import load_model, save_model
from runbatch.packager.handlers import find_handler


def _frame(rows: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    return X, (X.a + X.b > 0).to_numpy().astype(int)


def _with_colour(rows: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    """A numeric column and a categorical one the label depends on."""
    rng = np.random.default_rng(1)
    X = pd.DataFrame(
        {"x": rng.normal(size=rows), "colour": pd.Categorical(rng.choice(["red", "green", "blue"], rows))}
    )
    return X, ((X.colour == "green") | (X.x > 1)).to_numpy().astype(int)


def _features(sig: ModelSignature) -> list[tuple[str, DataType]]:
    return [(f.name, f.dtype) for f in sig.inputs + sig.outputs]  # type: ignore[attr-defined]


def test_xgb_classifier_round_trip(tmp_path: Path) -> None:
    X, y = _frame()
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)
    meta = save_model(model, tmp_path, name="XGB", sample_input_data=X.head(50))
    assert meta.model_type == "xgboost"
    assert list(meta.signatures) == ["predict", "predict_proba"]
    assert _features(meta.signatures["predict"]) == [
        ("a", DataType.DOUBLE),
        ("b", DataType.DOUBLE),
        ("c", DataType.DOUBLE),
        ("output_feature_0", DataType.INT64),
    ]
    assert [f.name for f in meta.signatures["predict_proba"].outputs] == [
        "output_feature_0",
        "output_feature_1",
    ]
    assert sorted(p.name for p in (tmp_path / "model" / "models" / "XGB").iterdir()) == ["model.ubj"]
    saved = yaml.safe_load((tmp_path / "model" / "model.yaml").read_text())
    blob = saved["models"]["XGB"]
    assert (blob["path"], blob["handler_version"]) == ("model.ubj", "2023-12-01")
    assert blob["options"] == {"xgb_estimator_type": "XGBClassifier", "enable_categorical": False}
    assert saved["env"]["cuda_version"] == "12.4"
    assert saved["env"]["pip_requirements"] == [
        f"scikit-learn=={sklearn.__version__}",
        f"xgboost=={xgboost.__version__}",
    ]
    loaded, meta2 = load_model(tmp_path)
    assert type(loaded) is xgboost.XGBClassifier
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    functions = LoadedModel(loaded, meta2)
    out = functions.function("predict_proba")(X.iloc[7:19], {})
    assert list(out.columns) == ["output_feature_0", "output_feature_1"]
    np.testing.assert_array_equal(out.to_numpy(), model.predict_proba(X.iloc[7:19]))
    labels = functions.function("predict")(X, {})
    assert labels.output_feature_0.tolist() == model.predict(X).tolist()


def test_xgb_regressor_from_array_and_options(tmp_path: Path) -> None:
    X, _ = _frame()
    arr = X.to_numpy()
    model = xgboost.XGBRegressor(n_estimators=5, max_depth=2).fit(arr, arr @ [1.0, -2.0, 0.5])
    meta = save_model(
        model,
        tmp_path,
        name="REG",
        sample_input_data=arr[:50],
        options={"cuda_version": "11.8", "use_gpu": False},
    )
    assert list(meta.signatures) == ["predict"]  # a regressor has no predict_proba
    assert _features(meta.signatures["predict"]) == [
        ("input_feature_0", DataType.DOUBLE),
        ("input_feature_1", DataType.DOUBLE),
        ("input_feature_2", DataType.DOUBLE),
        ("output_feature_0", DataType.FLOAT),
    ]
    assert meta.cuda_version == "11.8"
    fn = LoadedModel.from_dir(tmp_path).function("predict")
    named = pd.DataFrame(arr, columns=["input_feature_0", "input_feature_1", "input_feature_2"])
    out = fn(named, {})
    assert list(out.columns) == ["output_feature_0"]
    np.testing.assert_array_equal(out.output_feature_0.to_numpy(), model.predict(arr))


def test_xgb_booster_goes_through_a_dmatrix(tmp_path: Path) -> None:
    X, y = _frame()
    booster = xgboost.train(
        {"objective": "binary:logistic", "max_depth": 2}, xgboost.DMatrix(X, label=y), num_boost_round=5
    )
    meta = save_model(booster, tmp_path, name="BST", sample_input_data=X.head(50))
    assert list(meta.signatures) == ["predict"]
    assert meta.models["BST"].options == {"xgb_estimator_type": "Booster", "enable_categorical": False}
    loaded = LoadedModel.from_dir(tmp_path)
    assert type(loaded.model) is xgboost.Booster
    out = loaded.function("predict")(X, {})
    assert list(out.columns) == ["output_feature_0"]
    np.testing.assert_array_equal(out.output_feature_0.to_numpy(), booster.predict(xgboost.DMatrix(X)))


def test_xgb_text_columns_become_categories(tmp_path: Path) -> None:
    X, y = _with_colour()
    model = xgboost.XGBClassifier(n_estimators=5, max_depth=3, enable_categorical=True).fit(X, y)
    booster = model.get_booster()
    meta = save_model(model, tmp_path / "clf", name="CAT", sample_input_data=X.head(50))
    assert _features(meta.signatures["predict_proba"])[:2] == [
        ("x", DataType.DOUBLE),
        ("colour", DataType.STRING),
    ]
    assert meta.models["CAT"].options["enable_categorical"] is True
    # Plain strings, as a runtime passes them, of only two of the three categories: the codes of
    # a batch's own categories differ from training's, so this checks they are mapped back.
    rows = X[X.colour != "blue"].head(6)
    batch = pd.DataFrame({"x": rows.x.to_numpy(), "colour": rows.colour.astype(str).to_numpy()})
    out = LoadedModel.from_dir(tmp_path / "clf").function("predict_proba")(batch, {})
    np.testing.assert_array_equal(out.to_numpy(), model.predict_proba(rows))
    save_model(booster, tmp_path / "bst", name="CATB", sample_input_data=X.head(50))
    out = LoadedModel.from_dir(tmp_path / "bst").function("predict")(batch, {})
    expected = booster.predict(xgboost.DMatrix(rows, enable_categorical=True))
    np.testing.assert_array_equal(out.output_feature_0.to_numpy(), expected)


def test_lgbm_classifier_round_trip(tmp_path: Path) -> None:
    X, y = _frame()
    model = lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)
    meta = save_model(model, tmp_path, name="LGB", sample_input_data=X.head(50))
    assert meta.model_type == "lightgbm"
    assert list(meta.signatures) == ["predict", "predict_proba"]
    assert _features(meta.signatures["predict_proba"]) == [
        ("a", DataType.DOUBLE),
        ("b", DataType.DOUBLE),
        ("c", DataType.DOUBLE),
        ("output_feature_0", DataType.DOUBLE),
        ("output_feature_1", DataType.DOUBLE),
    ]
    assert sorted(p.name for p in (tmp_path / "model" / "models" / "LGB").iterdir()) == ["model.pkl"]
    blob = meta.models["LGB"]
    assert (blob.path, blob.handler_version) == ("model.pkl", "2024-03-19")
    assert blob.options == {"lightgbm_estimator_type": "LGBMClassifier"}
    assert meta.cuda_version is None
    assert meta.pip_requirements == [
        f"lightgbm=={lightgbm.__version__}",
        f"scikit-learn=={sklearn.__version__}",
    ]
    loaded = LoadedModel.from_dir(tmp_path)
    assert type(loaded.model) is lightgbm.LGBMClassifier
    out = loaded.function("predict_proba")(X.iloc[3:40], {})
    np.testing.assert_array_equal(out.to_numpy(), model.predict_proba(X.iloc[3:40]))
    assert loaded.function("predict")(X, {}).output_feature_0.tolist() == model.predict(X).tolist()


def test_lgbm_booster_and_categories(tmp_path: Path) -> None:
    X, y = _with_colour()
    booster = lightgbm.train(
        {"objective": "binary", "verbose": -1, "min_data_in_leaf": 5}, lightgbm.Dataset(X, label=y), 5
    )
    meta = save_model(booster, tmp_path, name="LB", sample_input_data=X.head(50))
    assert list(meta.signatures) == ["predict"]
    assert _features(meta.signatures["predict"]) == [
        ("x", DataType.DOUBLE),
        ("colour", DataType.STRING),
        ("output_feature_0", DataType.DOUBLE),
    ]
    loaded = LoadedModel.from_dir(tmp_path)
    assert type(loaded.model) is lightgbm.Booster
    batch = pd.DataFrame({"x": X.x.to_numpy()[10:13], "colour": X.colour.astype(str).to_numpy()[10:13]})
    out = loaded.function("predict")(batch, {})
    np.testing.assert_array_equal(out.output_feature_0.to_numpy(), booster.predict(X.iloc[10:13]))


def test_option_method_and_load_errors(tmp_path: Path) -> None:
    X, y = _frame()
    xgb_model = xgboost.XGBRegressor(n_estimators=2).fit(X, y)
    lgb_model = lightgbm.LGBMRegressor(n_estimators=2, verbose=-1).fit(X, y)
    with pytest.raises(
        ValueError, match=r"^\(2110\) model save: unrecognized option keys for this model type: "
    ):
        save_model(
            xgb_model, tmp_path / "a", name="M", sample_input_data=X.head(50), options={"batch_size": 3}
        )
    # LightGBM takes no cuda_version in Snowflake either.
    with pytest.raises(ValueError, match="unrecognized option keys for this model type: cuda_version. Check"):
        save_model(
            lgb_model,
            tmp_path / "b",
            name="M",
            sample_input_data=X.head(50),
            options={"cuda_version": "12.4"},
        )
    for model in (xgb_model, lgb_model):
        with pytest.raises(
            ValueError, match="^Target method predict_proba is not callable or does not exist in the model.$"
        ):
            save_model(
                model,
                tmp_path / "c",
                name="M",
                sample_input_data=X.head(50),
                options={"target_methods": ["predict_proba"]},
            )
    sig = ModelSignature([FeatureSpec("a", DataType.DOUBLE)], [FeatureSpec("y", DataType.DOUBLE)])
    with pytest.raises(ValueError, match="Target method transform is not callable"):
        save_model(xgb_model, tmp_path / "d", name="M", signatures={"transform": sig})
    with pytest.raises(ValueError, match="Either of `signatures` or `sample_input_data` must be provided"):
        save_model(lgb_model, tmp_path / "e", name="M")
    save_model(xgb_model, tmp_path / "f", name="M", sample_input_data=X.head(50))
    meta_file = tmp_path / "f" / "model" / "model.yaml"
    saved = yaml.safe_load(meta_file.read_text())
    saved["models"]["M"]["options"]["xgb_estimator_type"] = "DMatrix"
    meta_file.write_text(yaml.safe_dump(saved))
    with pytest.raises(ValueError, match="^Type of XGB estimator is illegal.$"):
        load_model(tmp_path / "f")
    saved["models"]["M"]["options"] = {}
    meta_file.write_text(yaml.safe_dump(saved))
    with pytest.raises(
        ValueError, match="Missing field `xgb_estimator_type` in model blob metadata for type `xgboost`"
    ):
        load_model(tmp_path / "f")


def test_handlers_are_picked_by_type_and_import_nothing_they_do_not_need() -> None:
    X, y = _frame(20)
    assert find_handler(xgboost.XGBRanker(n_estimators=1)).handler_type == "xgboost"
    assert find_handler(lightgbm.LGBMRegressor(n_estimators=1)).handler_type == "lightgbm"
    assert find_handler(xgboost.train({}, xgboost.DMatrix(X, label=y), 1)).handler_type == "xgboost"
    script = (
        "import json, sys\n"
        "from sklearn.linear_model import LinearRegression\n"
        "from runbatch.packager.handlers import all_handlers, find_handler\n"
        "assert find_handler(LinearRegression()).handler_type == 'sklearn'\n"
        "loaded = sorted({h.handler_type for h in all_handlers()} & {'xgboost', 'lightgbm', 'sentence_transformers'})\n"
        "frameworks = [m for m in ('xgboost', 'lightgbm', 'sentence_transformers', 'torch') if m in sys.modules]\n"
        "print(json.dumps([loaded, frameworks]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert json.loads(result.stdout) == [["lightgbm", "sentence_transformers", "xgboost"], []]
