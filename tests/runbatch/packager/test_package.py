"""save_model / load_model and the inference functions of each handler."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.linear_model import LogisticRegression

from runbatch.inference import LoadedModel
from runbatch.ml.model import custom_model
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature
from runbatch.packager import load_model, save_model
from runbatch.packager.meta import ModelMeta
from runbatch.packager.package import relax_requirement


class Scale(custom_model.CustomModel):
    @custom_model.inference_api
    def predict(self, X: pd.DataFrame, *, factor: int = 2, tags: list[str] = []) -> pd.DataFrame:  # noqa: B006
        return pd.DataFrame({"out": X["x"] * factor})


def test_sklearn_round_trip_and_functions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(30, 2)), columns=["f1", "f2"])
    model = LogisticRegression().fit(X, X.f1 > 0)
    meta = save_model(model, tmp_path, name="CLF", sample_input_data=X)
    assert sorted(meta.signatures) == ["decision_function", "predict", "predict_log_proba", "predict_proba"]
    manifest = yaml.safe_load((tmp_path / "MANIFEST.yml").read_text())
    assert [m["name"] for m in manifest["methods"]] == [
        "PREDICT",
        "PREDICT_PROBA",
        "PREDICT_LOG_PROBA",
        "DECISION_FUNCTION",
    ]
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["env", "model.yaml", "models"]
    loaded, meta2 = load_model(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert meta2.signatures == meta.signatures
    fn = LoadedModel(loaded, meta2).function("predict_proba")
    out = fn(X, {})
    assert list(out.columns) == ["output_feature_0", "output_feature_1"]
    np.testing.assert_array_equal(out.to_numpy(), model.predict_proba(X))


def test_custom_model_params_become_param_specs(tmp_path: Path) -> None:
    meta = save_model(Scale(), tmp_path, name="SCALE", sample_input_data=pd.DataFrame({"x": [1.0, 2.0]}))
    params = meta.signatures["predict"].params
    assert [(p.name, p.dtype, p.default_value, p.shape) for p in params] == [  # type: ignore[attr-defined]
        ("factor", DataType.INT64, 2, None),
        ("tags", DataType.STRING, [], (-1,)),
    ]
    fn = LoadedModel.from_dir(tmp_path).function("predict")
    assert fn(pd.DataFrame({"x": [1.5]}), {"factor": 4, "tags": []}).out.tolist() == [6.0]


def test_options_and_signature_errors(tmp_path: Path) -> None:
    with pytest.raises(
        ValueError, match=r"unrecognized option keys for this model type: colour\. Check spelling"
    ):
        save_model(
            Scale(),
            tmp_path / "a",
            name="S",
            sample_input_data=pd.DataFrame({"x": [1.0]}),
            options={"colour": 1},
        )
    with pytest.raises(ValueError, match="Either of `signatures` or `sample_input_data` must be provided"):
        save_model(Scale(), tmp_path / "b", name="S")
    sig = ModelSignature([FeatureSpec("x", DataType.DOUBLE)], [FeatureSpec("out", DataType.DOUBLE)])
    with pytest.raises(
        ValueError, match="Target method nope is not callable or does not exist in the model."
    ):
        save_model(Scale(), tmp_path / "c", name="S", signatures={"nope": sig})
    with pytest.raises(TypeError, match=r"\(2114\) <class 'int'> is not supported."):
        save_model(3, tmp_path / "d", name="S", signatures={"predict": sig})


def _x() -> pd.DataFrame:
    return pd.DataFrame({"x": [1.0, 2.0]})


def test_method_options_shape_the_manifest(tmp_path: Path) -> None:
    meta = save_model(
        Scale(),
        tmp_path,
        name="S",
        sample_input_data=_x(),
        options={
            "method_options": {
                "predict": {"case_sensitive": True, "max_batch_size": 64, "function_type": "TABLE_FUNCTION"}
            }
        },
    )
    assert meta.function_type("predict") == "TABLE_FUNCTION"
    (method,) = yaml.safe_load((tmp_path / "MANIFEST.yml").read_text())["methods"]
    assert (method["name"], method["type"]) == ("predict", "TABLE_FUNCTION")
    assert method["outputs"] == [{"name": "out", "type": "FLOAT"}]
    assert ModelMeta.read(tmp_path / "model").method_options == {
        "predict": {"case_sensitive": True, "max_batch_size": 64, "function_type": "TABLE_FUNCTION"}
    }


def test_method_option_errors(tmp_path: Path) -> None:
    with pytest.raises(TypeError) as exc:
        save_model(Scale(), tmp_path / "a", name="S", sample_input_data=_x(), options={"method_options": []})
    assert str(exc.value) == (
        "(2110) model save: method_options must be a dictionary mapping method names to their option dictionaries."
    )
    with pytest.raises(ValueError) as exc:
        save_model(
            Scale(),
            tmp_path / "b",
            name="S",
            sample_input_data=_x(),
            options={"method_options": {"predict": {"batch": 3}}},
        )
    assert str(exc.value) == (
        "(2110) model save: unrecognized method_options keys for one or more methods (method 'predict'): batch. "
        "Supported per-method keys are case_sensitive, function_type, max_batch_size, volatility."
    )
    with pytest.raises(NotImplementedError, match="^Function type VECTORIZED is not supported.$"):
        save_model(
            Scale(), tmp_path / "c", name="S", sample_input_data=_x(), options={"function_type": "VECTORIZED"}
        )


def test_relax_version_and_cuda_version(tmp_path: Path) -> None:
    pinned = save_model(
        Scale(), tmp_path / "a", name="S", sample_input_data=_x(), pip_requirements=["requests==2.31.0"]
    )
    assert "requests==2.31.0" in pinned.pip_requirements
    assert pinned.cuda_version is None and "gpu" not in pinned.to_dict()["runtimes"]
    relaxed = save_model(
        Scale(),
        tmp_path / "b",
        name="S",
        sample_input_data=_x(),
        pip_requirements=["requests==2.31.0", "numpy>=1.26"],
        conda_dependencies=["conda-forge::pandas==2.2.1"],
        options={"relax_version": True, "cuda_version": "12.4"},
    )
    assert "requests<3,>=2.31" in relaxed.pip_requirements and "numpy>=1.26" in relaxed.pip_requirements
    assert relaxed.conda_dependencies == ["conda-forge::pandas<3,>=2.2"]
    assert (tmp_path / "b/model/env/requirements.txt").read_text().splitlines() == relaxed.pip_requirements
    assert relaxed.cuda_version == "12.4" and "gpu" in relaxed.to_dict()["runtimes"]


@pytest.mark.parametrize(
    ("requirement", "relaxed"),
    [
        ("somepackage==1.0.0,!=1.1", "somepackage!=1.1,<2,>=1.0"),
        ("random-package>=2.3", "random-package>=2.3"),
        ("another_channel::another-package==1.0", "another_channel::another-package<2,>=1.0"),
        ("pip-packages==3", "pip-packages<4,>=3.0"),
        ("torch[cuda]==2.5.1; python_version >= '3.10'", 'torch[cuda]<3,>=2.5; python_version >= "3.10"'),
    ],
)
def test_relax_requirement_matches_snowflake(requirement: str, relaxed: str) -> None:
    assert relax_requirement(requirement) == relaxed
