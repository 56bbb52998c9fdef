from __future__ import annotations

import pandas as pd
import pytest

from runbatch.ml.model import custom_model


def test_context_artifacts_and_models() -> None:
    ctx = custom_model.ModelContext(weights="/tmp/w.bin", sub=object())
    assert ctx.path("weights") == "/tmp/w.bin" and ctx["weights"] == "/tmp/w.bin"
    assert ctx.model_ref("sub").name == "sub"
    with pytest.raises(KeyError, match="Key nope not found in the kwargs, current available keys are"):
        ctx["nope"]
    with pytest.raises(ValueError, match="Duplicate artifact name: a"):
        custom_model.ModelContext(artifacts={"a": "x"}, a="y")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def predict(self) -> pd.DataFrame: ...", "Predict method should have at least 2 arguments."),
        ("def predict(self, X): ...", "Missing type annotation for predict method."),
        (
            "def predict(self, X: int) -> pd.DataFrame: ...",
            "Input for predict method should have type pandas.DataFrame.",
        ),
        (
            "def predict(self, X: pd.DataFrame) -> int: ...",
            "Output for predict method should have type pandas.DataFrame.",
        ),
        (
            "def predict(self, X: pd.DataFrame, t: float = 1.0) -> pd.DataFrame: ...",
            "Parameter 't' must be keyword-only (defined after '*' in signature).",
        ),
        (
            "def predict(self, X: pd.DataFrame, *, t: float) -> pd.DataFrame: ...",
            "Parameter 't' must have a default value.",
        ),
        (
            "def predict(self, X: pd.DataFrame, *, t=1.0) -> pd.DataFrame: ...",
            "Parameter 't' must have a type annotation.",
        ),
        (
            "def predict(self, X: pd.DataFrame, *, t: list = []) -> pd.DataFrame: ...",
            "Parameter 't' has unsupported type annotation '<class 'list'>'",
        ),
        ("def predict(self, X: pd.DataFrame, **kw) -> pd.DataFrame: ...", "**kwargs is not supported"),
    ],
)
def test_inference_methods_are_validated_at_instantiation(source: str, message: str) -> None:
    namespace: dict[str, object] = {"pd": pd}
    exec(source, namespace)  # noqa: S102 - builds the method under test
    cls = type(
        "M", (custom_model.CustomModel,), {"predict": custom_model.inference_api(namespace["predict"])}
    )
    with pytest.raises(TypeError) as exc:
        cls()
    assert str(exc.value).startswith(message)


def test_partitioned_and_async_methods_are_found() -> None:
    class M(custom_model.CustomModel):
        @custom_model.partitioned_api
        def by_group(self, X: pd.DataFrame) -> pd.DataFrame:
            return X

        @custom_model.inference_api
        async def predict(self, X: pd.DataFrame) -> pd.DataFrame:
            return X

    model = M()
    assert sorted(f.__name__ for f in model._get_infer_methods()) == ["by_group", "predict"]
    assert model._get_partitioned_methods() == ["by_group"]
