"""PyTorch and TorchScript models through the registry: log, run, run_batch, load, export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.packager import load_model
from runbatch.snowpark import Session

POOL = "SYSTEM_COMPUTE_POOL_CPU"
JIT_DEPRECATED = r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning"


class Pair(torch.nn.Module):
    """forward(x (n, 4), w (n, 4)) -> (score (n,), x * w (n, 4))."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 1)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        product = x * w
        return self.linear(product).squeeze(1), product


@pytest.fixture(scope="module")
def mlp() -> torch.nn.Sequential:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    x = torch.randn(128, 3)
    y = torch.stack([x.sum(1), x[:, 0] * x[:, 1]], dim=1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(25):
        optimizer.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        optimizer.step()
    return model.eval()


def _rows(n: int, seed: int) -> tuple[pd.DataFrame, torch.Tensor]:
    x = torch.randn(n, 3, generator=torch.Generator().manual_seed(seed))
    frame = pd.DataFrame({f"input_feature_{i}": x[:, i].numpy() for i in range(3)})
    frame.insert(0, "ID", np.arange(n, dtype=np.int64))
    return frame, x


def _direct(model: torch.nn.Module, *inputs: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return model(*inputs).numpy()  # type: ignore[no-any-return]


def _chunked(model: torch.nn.Module, x: torch.Tensor, rows: int) -> np.ndarray:
    """The module over ``rows``-row batches, as the job calls it: a one-row call takes another
    kernel than a many-row one, and differs in the last bit."""
    return np.concatenate([_direct(model, chunk) for chunk in torch.split(x, rows)])


def _batch(session: Session, mv, frame: pd.DataFrame, folder: str, **job: object) -> pd.DataFrame:  # type: ignore[no-untyped-def]
    run = mv.run_batch(
        session.create_dataframe(frame),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location=f"@DATA/{folder}/"),
        job_spec=JobSpec(function_name="forward", **job),
    )
    assert run.wait(120) == "DONE", run.get_logs()
    out = session.read.option("pattern", ".*\\.parquet").parquet(f"@DATA/{folder}/").to_pandas()
    return out.sort_values("ID").reset_index(drop=True)


def test_mlp_run_batch_run_load_and_export(
    embedded_session: Session, embedded_db: str, mlp: torch.nn.Sequential, tmp_path: Path
) -> None:
    sample, x_sample = _rows(20, seed=1)
    mv = Registry(embedded_session).log_model(mlp, model_name="MLP", sample_input_data=x_sample)
    (info,) = mv.show_functions()
    assert (info["name"], info["target_method"]) == ("FORWARD", "forward")
    assert [f.name for f in info["signature"].inputs] == [
        "input_feature_0",
        "input_feature_1",
        "input_feature_2",
    ]

    frame, x = _rows(3_001, seed=2)
    out = _batch(embedded_session, mv, frame, "mlp", max_batch_rows=1_000)
    assert list(out.columns) == [*frame.columns, "output_feature_0", "output_feature_1"]
    pd.testing.assert_frame_equal(out[frame.columns], frame)
    np.testing.assert_array_equal(
        out[["output_feature_0", "output_feature_1"]].to_numpy(np.float32), _chunked(mlp, x, 1_000)
    )
    expected = _direct(mlp, x)

    local = mv.run(frame.drop(columns=["ID"]), function_name="forward")
    assert list(local.columns) == ["output_feature_0", "output_feature_1"]
    np.testing.assert_array_equal(local.to_numpy(), expected)

    with pytest.warns(RuntimeWarning):
        loaded = mv.load()
    assert type(loaded) is torch.nn.Sequential
    np.testing.assert_array_equal(_direct(loaded, x), expected)

    mv.export(str(tmp_path / "export"))
    exported, meta = load_model(tmp_path / "export")
    assert meta.model_type == "pytorch" and type(exported) is torch.nn.Sequential
    np.testing.assert_array_equal(_direct(exported, x), expected)


def test_multiple_inputs_with_a_list_column_and_a_tuple_result(
    embedded_session: Session, embedded_db: str
) -> None:
    torch.manual_seed(3)
    model = Pair().eval()
    gen = torch.Generator().manual_seed(4)
    xs, ws = torch.randn(500, 4, generator=gen), torch.rand(500, 4, generator=gen)
    mv = Registry(embedded_session).log_model(
        model, model_name="PAIR", sample_input_data=[xs[:10], ws[:10]], options={"multiple_inputs": True}
    )
    frame = pd.DataFrame(
        {
            "ID": np.arange(500, dtype=np.int64),
            "input_feature_0": list(xs.numpy()),
            "input_feature_1": list(ws.numpy()),
        }
    )
    out = _batch(embedded_session, mv, frame, "pair", max_batch_rows=128)
    assert list(out.columns) == [
        "ID",
        "input_feature_0",
        "input_feature_1",
        "output_feature_0",
        "output_feature_1",
    ]
    with torch.no_grad():
        batches = [model(x, w) for x, w in zip(torch.split(xs, 128), torch.split(ws, 128), strict=True)]
    score = torch.cat([b[0] for b in batches]).numpy()
    product = torch.cat([b[1] for b in batches]).numpy()
    assert out.output_feature_1.map(len).eq(4).all()
    np.testing.assert_array_equal(out.output_feature_0.to_numpy(np.float32), score)
    np.testing.assert_array_equal(np.stack(out.output_feature_1.to_numpy()).astype(np.float32), product)

    local = mv.run(frame.drop(columns=["ID"]).head(7), function_name="forward")
    assert list(local.columns) == ["output_feature_0", "output_feature_1"]
    with torch.no_grad():
        score7, product7 = model(xs[:7], ws[:7])
    np.testing.assert_array_equal(local.output_feature_0.to_numpy(), score7.numpy())
    assert local.output_feature_1.tolist() == product7.numpy().tolist()


@pytest.mark.filterwarnings(JIT_DEPRECATED)
def test_traced_module_run_batch_and_load(
    embedded_session: Session, embedded_db: str, mlp: torch.nn.Sequential
) -> None:
    _, x_sample = _rows(8, seed=5)
    traced = torch.jit.trace(mlp, x_sample)
    mv = Registry(embedded_session).log_model(traced, model_name="TRACED", sample_input_data=x_sample)
    frame, x = _rows(700, seed=6)
    out = _batch(embedded_session, mv, frame, "traced")
    assert list(out.columns) == [*frame.columns, "output_feature_0", "output_feature_1"]
    np.testing.assert_array_equal(
        out[["output_feature_0", "output_feature_1"]].to_numpy(np.float32), _chunked(mlp, x, 700)
    )
    with pytest.warns(RuntimeWarning):
        loaded = mv.load()
    assert isinstance(loaded, torch.jit.ScriptModule)
    np.testing.assert_array_equal(_direct(loaded, x), _direct(mlp, x))
