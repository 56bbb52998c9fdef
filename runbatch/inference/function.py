"""LoadedModel and ModelFunction: input preparation, the call, and typed outputs."""

from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from runbatch.ml.model._signatures.core import (
    BaseFeatureSpec,
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ModelSignature,
)
from runbatch.packager import load_model
from runbatch.packager.handlers import handler_for_type
from runbatch.packager.handlers.base import InferFn
from runbatch.packager.meta import ModelMeta

__all__ = ["LoadedModel", "ModelFunction", "to_json_value"]


def to_json_value(value: Any) -> Any:
    """A model output cell as plain JSON types (numpy scalars and arrays included)."""
    if isinstance(value, np.ndarray):
        return [to_json_value(v) for v in value.tolist()]
    if isinstance(value, list | tuple):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


class ModelFunction:
    """One target method of a loaded model with its signature."""

    def __init__(
        self, method: str, signature: ModelSignature, fn: InferFn, function_type: str, partitioned: bool
    ):
        self.method = method
        self.signature = signature
        self.function_type = function_type
        self.partitioned = partitioned
        self._fn = fn

    def prepare_input(self, df: pd.DataFrame) -> pd.DataFrame:
        """The signature's input columns, in signature order, cast to the feature types."""
        columns: dict[str, Any] = {}
        for feature in self.signature.inputs:
            series = df[feature.name]
            if isinstance(feature, FeatureSpec) and not feature.shape and not series.hasnans:
                series = _cast(series, feature.dtype)
            columns[feature.name] = series
        return pd.DataFrame(columns, index=df.index)

    def numeric_input(self, columns: list[pa.Array | pa.ChunkedArray]) -> pd.DataFrame | None:
        """One 2-D block straight from Arrow when every input is a scalar number of one dtype, else None.

        A single column-major block becomes the DataFrame without another copy, and
        estimators turn it back into an array without copying either.
        """
        inputs = self.signature.inputs
        if len(inputs) != len(columns) or not all(isinstance(f, FeatureSpec) and not f.shape for f in inputs):
            return None
        dtypes = {f.dtype for f in inputs if isinstance(f, FeatureSpec)}
        if len(dtypes) != 1:
            return None
        (dtype,) = dtypes
        if not (dtype.is_float() or dtype.is_integer()) or any(c.null_count for c in columns):
            return None
        block = np.empty((len(columns[0]), len(columns)), dtype=dtype.numpy_type, order="F")
        for i, column in enumerate(columns):
            block[:, i] = column.to_numpy()
        return pd.DataFrame(block, columns=[f.name for f in self.signature.inputs], copy=False)

    def __call__(self, df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        """Outputs of the function for ``df`` (already named as the signature), one column per output."""
        return self.call_prepared(self.prepare_input(df), params)

    def call_prepared(self, prepared: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        """Call on input already in signature order and types (``prepare_input`` or ``numeric_input``)."""
        result = self._fn(prepared, params)
        if self.function_type == "FUNCTION" and len(result) != len(prepared):
            raise ValueError(
                f"Function {self.method} returned {len(result)} rows for {len(prepared)} input rows; a FUNCTION "
                "must return exactly one output row per input row."
            )
        return _select_outputs(result, self.signature.outputs, self.method)

    def output_arrays(self, outputs: pd.DataFrame) -> list[tuple[str, pa.Array]]:
        """Typed Arrow columns for ``outputs``: grouped and OBJECT values as JSON text."""
        return [(f.name, _to_arrow(outputs[f.name], f)) for f in self.signature.outputs]


def _cast(series: pd.Series, dtype: DataType) -> pd.Series:
    target = dtype.numpy_type
    if dtype in (DataType.STRING, DataType.BYTES, DataType.OBJECT, DataType.TIMESTAMP_NTZ):
        return series
    if series.dtype == target:
        return series
    try:
        return series.astype(target)
    except (TypeError, ValueError):
        return series


def _select_outputs(result: pd.DataFrame, outputs: list[BaseFeatureSpec], method: str) -> pd.DataFrame:
    """The signature's output columns of ``result`` (names matched exactly, then case-insensitively)."""
    names = [f.name for f in outputs]
    if list(result.columns) == names:
        return result
    lowered = {str(c).lower(): c for c in result.columns}
    renames: dict[Any, str] = {}
    for name in names:
        if name in result.columns:
            continue
        if name.lower() not in lowered:
            raise ValueError(
                f"Method {method} did not return the output column {name!r} of its signature; it returned "
                f"{[str(c) for c in result.columns]}."
            )
        renames[lowered[name.lower()]] = name
    return result.rename(columns=renames)[names] if renames else result[names]


def _to_arrow(series: pd.Series, feature: BaseFeatureSpec) -> pa.Array:
    if isinstance(feature, FeatureGroupSpec) or (
        isinstance(feature, FeatureSpec) and feature.dtype is DataType.OBJECT
    ):
        return pa.array(
            [None if v is None else json.dumps(to_json_value(v)) for v in series], type=pa.string()
        )
    assert isinstance(feature, FeatureSpec)
    target = feature.as_arrow_type()
    if feature.shape:
        return pa.array([None if v is None else to_json_value(v) for v in series], type=target)
    values = series.to_numpy() if isinstance(series, pd.Series) else series
    # Plain float arrays keep NaN as NaN; pandas' nullable types carry their nulls as masks.
    from_pandas = not (isinstance(values, np.ndarray) and values.dtype.kind == "f")
    try:
        return pa.array(values, type=target, from_pandas=from_pandas)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array(values, from_pandas=True).cast(target)


class LoadedModel:
    """A model loaded from its version folder, with one ModelFunction per target method."""

    def __init__(self, model: Any, meta: ModelMeta) -> None:
        self.model = model
        self.meta = meta
        handler = handler_for_type(meta.models[meta.name].model_type)
        self._fns = handler.inference_functions(model, meta)

    @classmethod
    def from_dir(cls, version_dir: Path) -> LoadedModel:
        model, meta = load_model(version_dir)
        return cls(model, meta)

    def function(self, method: str) -> ModelFunction:
        return ModelFunction(
            method,
            self.meta.signatures[method],
            self._fns[method],
            self.meta.function_type(method),
            self.meta.is_partitioned(method),
        )
