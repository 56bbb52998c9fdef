"""The pytorch and torchscript handlers: signatures inferred as Snowflake does, round trips, tensors in and out."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from runbatch.inference import LoadedModel
from runbatch.ml.model import custom_model
from runbatch.ml.model.model_signature import (
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ModelSignature,
    ParamSpec,
)
from runbatch.packager import load_model, save_model
from runbatch.packager.handlers import find_handler

# torch.jit is deprecated in this torch; the handler still saves and loads ScriptModules.
jit_deprecated = pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")

TORCH_PIN = f"torch=={torch.__version__.split('+')[0]}"


class TwoInputs(torch.nn.Module):
    """forward(x (n, 4), w (n,)) -> (score (n,), x scaled by w (n, 4)): a tuple of two tensors."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.linear(x).squeeze(1) * w, x * w.unsqueeze(1)


class Scaled(torch.nn.Module):
    """forward(x, scale=1.0): a keyword the signature passes as a parameter."""

    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return x.sum(dim=1) * scale


class Holder(custom_model.CustomModel):
    @custom_model.inference_api
    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        net = self.context.model_ref("net").model
        with torch.no_grad():
            out = net(torch.tensor(X.to_numpy(dtype=np.float32)))
        return pd.DataFrame({"y": out[:, 0].numpy()})


def _mlp() -> torch.nn.Sequential:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    x = torch.randn(64, 3)
    y = torch.stack([x.sum(1), x[:, 0] - x[:, 2]], dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(20):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def mlp() -> torch.nn.Sequential:
    return _mlp()


@pytest.fixture(scope="module")
def x() -> torch.Tensor:
    return torch.randn(150, 3, generator=torch.Generator().manual_seed(1))


def _direct(model: torch.nn.Module, *inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(*inputs).numpy()  # type: ignore[no-any-return]


def _frame(x: torch.Tensor, prefix: str = "input_feature_") -> pd.DataFrame:
    return pd.DataFrame({f"{prefix}{i}": x[:, i].numpy() for i in range(x.shape[1])})


def test_mlp_round_trip_with_a_tensor_sample(
    tmp_path: Path, mlp: torch.nn.Sequential, x: torch.Tensor
) -> None:
    with pytest.warns(UserWarning, match="The sample input has 150 rows. Using the first 100 rows"):
        meta = save_model(mlp, tmp_path, name="MLP", sample_input_data=x)
    assert meta.model_type == "pytorch"
    assert meta.signatures == {
        "forward": ModelSignature(
            inputs=[FeatureSpec(f"input_feature_{i}", DataType.FLOAT, nullable=False) for i in range(3)],
            outputs=[FeatureSpec(f"output_feature_{i}", DataType.FLOAT, nullable=False) for i in range(2)],
        )
    }
    assert sorted(meta.pip_requirements) == sorted(
        [TORCH_PIN, f"cloudpickle=={__import__('cloudpickle').__version__}"]
    )
    stored = yaml.safe_load((tmp_path / "model" / "model.yaml").read_text())
    assert stored["models"]["MLP"] | {"function_properties": None} == {
        "name": "MLP",
        "model_type": "pytorch",
        "path": "model.pt",
        "handler_version": "2025-03-01",
        "function_properties": None,
        "artifacts": {},
        "options": {"multiple_inputs": False},
    }
    assert stored["env"]["cuda_version"] == "12.4" and "gpu" in stored["runtimes"]
    assert (tmp_path / "model" / "models" / "MLP" / "model.pt").is_file()
    manifest = yaml.safe_load((tmp_path / "MANIFEST.yml").read_text())
    assert [m["name"] for m in manifest["methods"]] == ["FORWARD"]

    loaded, meta2 = load_model(tmp_path)
    assert type(loaded) is torch.nn.Sequential and not loaded.training
    np.testing.assert_array_equal(_direct(loaded, x), _direct(mlp, x))
    out = LoadedModel(loaded, meta2).function("forward")(_frame(x), {})
    assert list(out.columns) == ["output_feature_0", "output_feature_1"]
    assert (out.dtypes == np.float32).all()
    np.testing.assert_array_equal(out.to_numpy(), _direct(mlp, x))


def test_a_dataframe_sample_keeps_its_names_and_types(
    tmp_path: Path, mlp: torch.nn.Sequential, x: torch.Tensor
) -> None:
    sample = _frame(x[:10], prefix="F")
    meta = save_model(mlp, tmp_path, name="MLP", sample_input_data=sample)
    sig = meta.signatures["forward"]
    assert [(f.name, f.dtype) for f in sig.inputs] == [
        ("F0", DataType.FLOAT),
        ("F1", DataType.FLOAT),
        ("F2", DataType.FLOAT),
    ]  # type: ignore[attr-defined]
    assert [f.name for f in sig.outputs] == ["output_feature_0", "output_feature_1"]
    fn = LoadedModel.from_dir(tmp_path).function("forward")
    # Columns arrive by name, in the signature's order, whatever the frame's order.
    out = fn(_frame(x, prefix="F")[["F2", "F0", "F1"]], {})
    np.testing.assert_array_equal(out.to_numpy(), _direct(mlp, x))
    # A float64 frame is cast to the signature's FLOAT before it becomes a tensor.
    np.testing.assert_array_equal(
        fn(_frame(x, prefix="F").astype(np.float64), {}).to_numpy(), _direct(mlp, x)
    )


def test_multiple_inputs_and_a_tuple_result(tmp_path: Path) -> None:
    torch.manual_seed(2)
    model = TwoInputs().eval()
    xs, ws = torch.randn(40, 4), torch.rand(40)
    meta = save_model(
        model, tmp_path, name="TWO", sample_input_data=[xs, ws], options={"multiple_inputs": True}
    )
    assert meta.signatures["forward"] == ModelSignature(
        inputs=[
            FeatureSpec("input_feature_0", DataType.FLOAT, shape=(4,)),
            FeatureSpec("input_feature_1", DataType.FLOAT),
        ],
        outputs=[
            FeatureSpec("output_feature_0", DataType.FLOAT),
            FeatureSpec("output_feature_1", DataType.FLOAT, shape=(4,)),
        ],
    )
    assert meta.models["TWO"].options == {"multiple_inputs": True}
    fn = LoadedModel.from_dir(tmp_path).function("forward")
    with torch.no_grad():
        score, scaled = model(xs, ws)
    # Shaped features arrive as lists (a local pandas frame) or as arrays (Arrow batches).
    for cells in (xs.numpy().tolist(), list(xs.numpy())):
        out = fn(pd.DataFrame({"input_feature_0": cells, "input_feature_1": ws.numpy()}), {})
        assert list(out.columns) == ["output_feature_0", "output_feature_1"]
        np.testing.assert_array_equal(out.output_feature_0.to_numpy(np.float32), score.numpy())
        np.testing.assert_array_equal(
            np.array(out.output_feature_1.tolist(), dtype=np.float32), scaled.numpy()
        )


def test_a_single_tensor_result_with_multiple_inputs_is_one_shaped_column(
    tmp_path: Path, mlp: torch.nn.Sequential, x: torch.Tensor
) -> None:
    """Snowflake wraps a lone result in a list, so its columns become one array feature."""
    meta = save_model(
        mlp, tmp_path, name="MLP", sample_input_data=[x[:20]], options={"multiple_inputs": True}
    )
    assert meta.signatures["forward"] == ModelSignature(
        inputs=[FeatureSpec("input_feature_0", DataType.FLOAT, shape=(3,))],
        outputs=[FeatureSpec("output_feature_0", DataType.FLOAT, shape=(2,))],
    )
    out = LoadedModel.from_dir(tmp_path).function("forward")(
        pd.DataFrame({"input_feature_0": list(x.numpy())}), {}
    )
    np.testing.assert_array_equal(np.array(out.output_feature_0.tolist(), dtype=np.float32), _direct(mlp, x))


def test_shaped_features_stack_into_one_tensor(tmp_path: Path) -> None:
    """Without multiple_inputs, k features of shape (m,) make one (n, k, m) tensor."""
    model = torch.nn.Flatten()
    sample = torch.arange(24, dtype=torch.float64).reshape(4, 2, 3)
    meta = save_model(model, tmp_path, name="FLAT", sample_input_data=sample)
    sig = meta.signatures["forward"]
    assert sig.inputs == [
        FeatureSpec(f"input_feature_{i}", DataType.DOUBLE, shape=(3,), nullable=False) for i in range(2)
    ]
    assert [(f.name, f.shape) for f in sig.outputs] == [(f"output_feature_{i}", None) for i in range(6)]  # type: ignore[attr-defined]
    frame = pd.DataFrame(
        {"input_feature_0": list(sample[:, 0].numpy()), "input_feature_1": list(sample[:, 1].numpy())}
    )
    out = LoadedModel.from_dir(tmp_path).function("forward")(frame, {})
    np.testing.assert_array_equal(out.to_numpy(), sample.reshape(4, 6).numpy())


def test_signature_params_reach_forward_as_keywords(tmp_path: Path) -> None:
    sig = ModelSignature(
        inputs=[FeatureSpec("a", DataType.DOUBLE), FeatureSpec("b", DataType.DOUBLE)],
        outputs=[FeatureSpec("total", DataType.DOUBLE)],
        params=[ParamSpec("scale", DataType.DOUBLE, 1.0)],
    )
    save_model(Scaled(), tmp_path, name="S", signatures={"forward": sig})
    fn = LoadedModel.from_dir(tmp_path).function("forward")
    out = fn(pd.DataFrame({"a": [1.0, 2.0], "b": [10.0, 20.0]}), {"scale": 2.0})
    assert out.total.tolist() == [22.0, 44.0]


@jit_deprecated
def test_torchscript_scripted_and_traced(tmp_path: Path, mlp: torch.nn.Sequential, x: torch.Tensor) -> None:
    scripted = torch.jit.script(mlp)
    traced = torch.jit.trace(mlp, x[:5])
    for name, module in (("SCRIPTED", scripted), ("TRACED", traced)):
        assert find_handler(module).handler_type == "torchscript"
        meta = save_model(module, tmp_path / name, name=name, sample_input_data=x[:20])
        assert meta.model_type == "torchscript" and meta.pip_requirements == [TORCH_PIN]
        assert meta.models[name].path == "model.pt" and meta.models[name].options == {
            "multiple_inputs": False
        }
        assert [f.name for f in meta.signatures["forward"].outputs] == [
            "output_feature_0",
            "output_feature_1",
        ]
        loaded, meta2 = load_model(tmp_path / name)
        assert isinstance(loaded, torch.jit.ScriptModule)
        np.testing.assert_array_equal(_direct(loaded, x), _direct(mlp, x))
        out = LoadedModel(loaded, meta2).function("forward")(_frame(x), {})
        np.testing.assert_array_equal(out.to_numpy(), _direct(mlp, x))


@jit_deprecated
def test_torchscript_passes_only_the_keywords_its_schema_declares(tmp_path: Path) -> None:
    sig = ModelSignature(
        inputs=[FeatureSpec("a", DataType.DOUBLE), FeatureSpec("b", DataType.DOUBLE)],
        outputs=[FeatureSpec("total", DataType.DOUBLE)],
        params=[ParamSpec("scale", DataType.DOUBLE, 1.0), ParamSpec("unused", DataType.INT64, 0)],
    )
    save_model(torch.jit.script(Scaled()), tmp_path, name="S", signatures={"forward": sig})
    fn = LoadedModel.from_dir(tmp_path).function("forward")
    out = fn(pd.DataFrame({"a": [1.0], "b": [2.0]}), {"scale": 3.0, "unused": 7})
    assert out.total.tolist() == [9.0]


def test_handler_choice_and_sub_models(tmp_path: Path, mlp: torch.nn.Sequential, x: torch.Tensor) -> None:
    assert find_handler(mlp).handler_type == "pytorch"
    holder = Holder(custom_model.ModelContext(models={"net": mlp}))
    save_model(holder, tmp_path, name="H", sample_input_data=_frame(x[:5]))
    loaded, _ = load_model(tmp_path)
    assert type(loaded.context.model_ref("net").model) is torch.nn.Sequential
    out = LoadedModel.from_dir(tmp_path).function("predict")(_frame(x), {})
    np.testing.assert_array_equal(out.y.to_numpy(), _direct(mlp, x)[:, 0])


def test_errors(tmp_path: Path, mlp: torch.nn.Sequential, x: torch.Tensor) -> None:
    with pytest.raises(
        ValueError, match=r"^\(2110\) model save: unrecognized option keys for this model type: batch_size\."
    ):
        save_model(mlp, tmp_path / "a", name="M", sample_input_data=x, options={"batch_size": 2})
    with pytest.raises(
        ValueError, match=r"^\(2110\) Either of `signatures` or `sample_input_data` must be provided"
    ):
        save_model(mlp, tmp_path / "b", name="M")
    with pytest.raises(NotImplementedError, match="^Explainability is not supported for PyTorch model.$"):
        save_model(
            mlp, tmp_path / "c", name="M", sample_input_data=x, options={"enable_explainability": True}
        )
    with pytest.raises(
        ValueError, match="^Target method predict is not callable or does not exist in the model.$"
    ):
        save_model(
            mlp, tmp_path / "d", name="M", sample_input_data=x, options={"target_methods": ["predict"]}
        )
    save_model(mlp, tmp_path / "e", name="M", sample_input_data=x[:5])
    fn = LoadedModel.from_dir(tmp_path / "e").function("forward")
    frame = _frame(x[:3])
    frame.iloc[1, 2] = np.nan
    with pytest.raises(ValueError, match="^Tensor cannot handle null values.$"):
        fn(frame, {})
    grouped = ModelSignature(
        inputs=[FeatureGroupSpec("g", [FeatureSpec("a", DataType.FLOAT)])],
        outputs=[FeatureSpec("y", DataType.FLOAT)],
    )
    save_model(
        mlp, tmp_path / "f", name="M", signatures={"forward": grouped}, options={"multiple_inputs": True}
    )
    with pytest.raises(NotImplementedError, match=r"^\(2113\) FeatureGroupSpec is not supported"):
        LoadedModel.from_dir(tmp_path / "f").function("forward")(pd.DataFrame({"g": [{"a": 1.0}]}), {})


@jit_deprecated
def test_torchscript_explainability_error(tmp_path: Path, mlp: torch.nn.Sequential, x: torch.Tensor) -> None:
    with pytest.raises(
        NotImplementedError, match="^Explainability is not supported for Torch Script model.$"
    ):
        save_model(
            torch.jit.script(mlp),
            tmp_path,
            name="M",
            sample_input_data=x,
            options={"enable_explainability": True},
        )


def test_the_handlers_do_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from runbatch.packager.handlers.pytorch import PyTorchHandler\n"
        "from runbatch.packager.handlers.torchscript import TorchScriptHandler\n"
        "assert not PyTorchHandler().can_handle(object()) and not TorchScriptHandler().can_handle(object())\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])
