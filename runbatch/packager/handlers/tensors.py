"""Frames to tensors and back, as Snowflake's PyTorch data handlers convert them.

Inference functions see a DataFrame named after the signature inputs. Without
``multiple_inputs`` the whole frame becomes one tensor (scalar columns give ``(n, k)``,
columns of shape ``s`` give ``(n, k, *s)``) in the first input's type; with it, each input
feature becomes its own tensor. Results go back through the numpy conversions of
``runbatch.ml.model._signatures``: one tensor's columns, or one column per tensor of a tuple.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from runbatch.ml.model._signatures.core import BaseFeatureSpec, FeatureGroupSpec, FeatureSpec, coded
from runbatch.ml.model._signatures.infer import convert_local_data_to_df, local_data

if TYPE_CHECKING:
    import torch

__all__ = [
    "frame_to_tensor",
    "frame_to_tensors",
    "is_tensor",
    "is_tensor_sequence",
    "outputs_to_frame",
    "to_local",
]


def is_tensor(data: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(data, torch.Tensor)


def is_tensor_sequence(data: Any) -> bool:
    return isinstance(data, Sequence) and len(data) > 0 and all(is_tensor(t) for t in data)


def to_local(data: Any) -> Any:
    """Tensors as numpy arrays (see ``local_data``), which the signature module understands."""
    return local_data(data)


def outputs_to_frame(result: Any) -> pd.DataFrame:
    """A model result (tensor or sequence of tensors) as a frame with numeric column labels."""
    return convert_local_data_to_df(to_local(result))


def _from_numpy(array: np.ndarray[Any, Any]) -> torch.Tensor:
    import torch

    # pandas' copy-on-write hands out read-only views, which torch refuses to share silently.
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


def _column(series: pd.Series, dtype: Any) -> np.ndarray[Any, Any]:
    """One feature's values as an array of shape (n, *feature shape)."""
    if series.dtype != np.object_:
        return series.to_numpy(dtype=dtype)
    return np.stack(list(series.to_numpy())).astype(dtype, copy=False)


def _feature_specs(features: Sequence[BaseFeatureSpec]) -> list[FeatureSpec]:
    specs = []
    for feature in features:
        if isinstance(feature, FeatureGroupSpec):
            raise coded(
                2113,
                NotImplementedError,
                "FeatureGroupSpec is not supported when converting to Tensorflow tensor.",
            )
        assert isinstance(feature, FeatureSpec), "Invalid feature kind."
        specs.append(feature)
    return specs


def frame_to_tensor(df: pd.DataFrame, features: Sequence[BaseFeatureSpec] | None = None) -> torch.Tensor:
    """The whole frame as one tensor, in the type of the first feature (or the frame's own types)."""
    if features is None:
        if any(dtype == np.object_ for dtype in df.dtypes):
            return _from_numpy(np.array(df.to_numpy().tolist()))
        return _from_numpy(df.to_numpy())
    dtype = _feature_specs(features)[0].dtype.numpy_type
    if all(dtype_ != np.object_ for dtype_ in df.dtypes):
        return _from_numpy(np.ascontiguousarray(df.to_numpy(dtype=dtype)))
    columns = [_column(df[name], dtype) for name in df.columns]
    if len({c.shape for c in columns}) > 1:
        raise coded(
            2112,
            ValueError,
            "Data Validation Error: the input features have different shapes "
            f"{[tuple(c.shape[1:]) for c in columns]}, so they cannot be stacked into one tensor. Log the model "
            "with the option multiple_inputs=True to pass each feature as its own tensor.",
        )
    return _from_numpy(np.stack(columns, axis=1))


def frame_to_tensors(
    df: pd.DataFrame, features: Sequence[BaseFeatureSpec] | None = None
) -> list[torch.Tensor]:
    """One tensor per feature (per column without features), each of shape (n, *feature shape)."""
    if features is None:
        return [_from_numpy(np.stack(list(df[column].to_numpy()))) for column in df.columns]
    return [_from_numpy(_column(df[f.name], f.dtype.numpy_type)) for f in _feature_specs(features)]
