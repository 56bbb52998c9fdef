"""The registry through the SDK: log, find, describe, run locally, load, export, delete."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pytest
import sklearn
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from runbatch.ml.model import ExportMode, Model, custom_model
from runbatch.ml.model.batch import OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Doubler, Tripler


def _out(location: str) -> OutputSpec:
    return OutputSpec(stage_location=location)


def _data(rows: int = 40) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    return X, X.a * 2 - X.b + 0.5


class WithArtifact(custom_model.CustomModel):
    """Reads an offset from a file artifact and calls a scikit-learn sub-model."""

    def __init__(self, context: custom_model.ModelContext) -> None:
        super().__init__(context)
        with open(self.context.path("offset")) as f:
            self.offset = float(f.read())

    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        raw = self.context.model_ref("reg").predict(X[["a", "b", "c"]])
        return pd.DataFrame({"prediction": raw + self.offset})


def test_log_and_inspect_versions(session: Session, fresh_db: str) -> None:
    X, y = _data()
    reg = Registry(session)
    assert reg.location == f"{fresh_db}.PUBLIC"
    pipe = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
    v1 = reg.log_model(
        pipe,
        model_name="price",
        version_name="v1",
        sample_input_data=X.head(10),
        comment="first",
        metrics={"rmse": 0.25},
        pip_requirements=["requests"],
    )
    v2 = reg.log_model(pipe, model_name="PRICE", sample_input_data=X.head(10))
    assert (v1.model_name, v1.version_name, v1.comment) == ("PRICE", "V1", "first")
    assert v1.fully_qualified_model_name == f"{fresh_db}.PUBLIC.PRICE"
    assert [f["name"] for f in v1.show_functions()] == ["PREDICT"]
    model = reg.get_model("price")
    assert [v.version_name for v in model.versions()] == ["V1", v2.version_name]
    assert model.default.version_name == "V1" and model.first() == v1 and model.last() == v2
    versions = model.show_versions()
    assert versions.name.tolist() == ["V1", v2.version_name]
    assert json.loads(versions.aliases[0]) == ["DEFAULT", "FIRST"]
    assert json.loads(versions.pip_requirements[0]) == ["requests", f"scikit-learn=={sklearn.__version__}"]
    assert v1.show_metrics() == {"rmse": 0.25}
    v1.set_metric("mae", {"train": 0.1})
    assert v1.get_metric("mae") == {"train": 0.1}
    v1.delete_metric("rmse")
    with pytest.raises(KeyError, match="Cannot find metric with name rmse."):
        v1.get_metric("rmse")
    v2.set_alias("champion")
    assert model.version("CHAMPION") == v2
    v2.unset_alias("champion")
    with pytest.raises(ValueError, match="Unable to find version or alias with name CHAMPION"):
        model.version("champion")
    model.default = v2
    assert model.default == v2
    model.set_tag("stage", "prod")
    assert model.show_tags() == {f"{fresh_db}.PUBLIC.STAGE": "prod"} and model.get_tag("stage") == "prod"
    model.unset_tag("stage")
    assert model.get_tag("stage") is None
    model.comment = "a pricing model"
    assert model.description == "a pricing model"
    with pytest.raises(ValueError, match="Model price version v1 already existed"):
        reg.log_model(pipe, model_name="price", version_name="v1", sample_input_data=X.head(10))
    assert reg.show_models().name.tolist() == ["PRICE"]
    model.delete_version("V1")
    assert [v.version_name for v in model.versions()] == [v2.version_name]
    reg.delete_model("PRICE")
    with pytest.raises(ValueError, match="Unable to find model PRICE"):
        reg.get_model("PRICE")
    with pytest.raises(RuntimeError, match="Model's initializer is not meant to be used"):
        Model()


def test_run_load_and_export_round_trip(session: Session, fresh_db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    X, y = _data()
    sub = LinearRegression().fit(X, y)
    offset = tmp_path / "offset.txt"
    offset.write_text("100")
    model = WithArtifact(custom_model.ModelContext(artifacts={"offset": str(offset)}, models={"reg": sub}))
    mv = Registry(session).log_model(model, model_name="WRAPPED", sample_input_data=X.head(5))
    result = mv.run(X)
    assert list(result.columns) == ["prediction"]
    np.testing.assert_allclose(result.prediction.to_numpy(), sub.predict(X) + 100, rtol=1e-12)
    with pytest.warns(RuntimeWarning) as warned:
        loaded = mv.load()
    assert [str(w.message)[:30] for w in warned] == [
        "Loading model requires to have",
        "Loading the model into memory.",
    ]
    assert isinstance(loaded, WithArtifact) and loaded.offset == 100.0
    out = tmp_path / "export"
    mv.export(str(out))
    assert sorted(p.name for p in (out / "model").iterdir()) == ["env", "model.yaml", "models"]
    full = tmp_path / "full"
    mv.export(str(full), export_mode=ExportMode.FULL)
    assert sorted(os.listdir(full)) == ["MANIFEST.yml", "model"]
    with pytest.raises(ValueError, match="is a file or an non-empty folder"):
        mv.export(str(full))
    frame = session.create_dataframe(X)
    with_outputs = mv.run(frame).to_pandas()
    assert list(with_outputs.columns) == ["a", "b", "c", "prediction"]


def test_local_run_validates_like_snowflake(session: Session, fresh_db: str) -> None:
    mv = Registry(session).log_model(Doubler(), model_name="D", sample_input_data=pd.DataFrame({"X": [1.0]}))
    assert mv.run(pd.DataFrame({"X": [1.0, 2.0]}), params={"scale": 3}).Y.tolist() == [6.0, 12.0]
    assert mv.run(np.array([[4.0]])).Y.tolist() == [8.0]  # unnamed columns take the signature's names
    with pytest.raises(ValueError) as exc:
        mv.run(pd.DataFrame({"x": [1.0]}))
    assert str(exc.value).startswith("(2112) Data Validation Error: feature X does not exist in data.")
    with pytest.raises(
        ValueError, match=r"Unknown parameter\(s\): \['nope'\]. Valid parameters are: \['scale'\]"
    ):
        mv.run(pd.DataFrame({"X": [1.0]}), params={"nope": 1})


def test_a_version_logged_again_after_a_delete_runs_the_new_model(session: Session, fresh_db: str) -> None:
    reg = Registry(session)
    frame = pd.DataFrame({"X": [1.0, 2.0]})
    first = reg.log_model(Doubler(), model_name="M", version_name="V1", sample_input_data=frame)
    assert first.run(frame)["Y"].tolist() == [2.0, 4.0]
    job = first.run_batch(
        session.create_dataframe(frame), compute_pool="SYSTEM_COMPUTE_POOL_CPU", output_spec=_out("@DATA/a/")
    )
    assert job.wait(60) == "DONE"
    reg.delete_model("M")
    # Same name, other model: workers that cached V1's files must not run them again.
    second = reg.log_model(Tripler(), model_name="M", version_name="V1", sample_input_data=frame)
    job = second.run_batch(
        session.create_dataframe(frame), compute_pool="SYSTEM_COMPUTE_POOL_CPU", output_spec=_out("@DATA/b/")
    )
    assert job.wait(60) == "DONE", job.get_logs()
    out = session.read.parquet("@DATA/b/").to_pandas().sort_values("X")
    assert out.Y.tolist() == [3.0, 6.0]


def test_a_version_may_be_named_like_an_alias(session: Session, fresh_db: str) -> None:
    reg = Registry(session)
    frame = pd.DataFrame({"X": [1.0]})
    v1 = reg.log_model(Doubler(), model_name="M", version_name="V1", sample_input_data=frame)
    v1.set_alias("PROD")  # version names and aliases are separate namespaces, as in Snowflake
    prod = reg.log_model(Doubler(), model_name="M", version_name="PROD", sample_input_data=frame)
    assert prod.version_name == "PROD"
    with pytest.raises(ValueError, match="version V1 already existed"):
        reg.log_model(Doubler(), model_name="M", version_name="V1", sample_input_data=frame)


@pytest.mark.parametrize("mode", [ExportMode.MODEL, ExportMode.FULL])
def test_an_exported_version_logs_again(embedded_session: Session, embedded_db: str, tmp_path, mode) -> None:  # type: ignore[no-untyped-def]
    X, y = _data()
    pipe = make_pipeline(StandardScaler(), LinearRegression()).fit(X, y)
    reg = Registry(embedded_session)
    mv = reg.log_model(pipe, model_name="price", sample_input_data=X.head(5), pip_requirements=["requests"])
    mv.export(str(tmp_path / "out"), export_mode=mode)
    again = reg.log_model(tmp_path / "out", model_name="price_copy", version_name="v9", comment="copied")
    assert (again.version_name, again.comment) == ("V9", "copied")
    assert again.show_functions() == mv.show_functions()
    pd.testing.assert_frame_equal(again.run(X, function_name="predict"), mv.run(X, function_name="predict"))
    versions = reg.get_model("price_copy").show_versions()
    assert json.loads(versions.pip_requirements[0]) == ["requests", f"scikit-learn=={sklearn.__version__}"]
    with pytest.raises(ValueError) as exc:
        reg.log_model(tmp_path / "out", model_name="x", sample_input_data=X)
    assert str(exc.value) == (
        "When calling log_model with an exported model folder, only model_name and version_name may be specified."
    )
    with pytest.raises(ValueError, match="is not an exported model version: it has no model/model.yaml"):
        reg.log_model(tmp_path, model_name="x")
