"""Checking inference input against a signature, naming outputs, and resolving params."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from runbatch.ml.model._signatures.core import (
    BaseFeatureSpec,
    BaseParamSpec,
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ParamGroupSpec,
    ParamSpec,
    check_param_value,
    coded,
    shape_problem,
)

__all__ = ["rename_pandas_df", "resolve_params", "validate_pandas_df", "validate_params"]


def rename_pandas_df(df: pd.DataFrame, features: Sequence[BaseFeatureSpec]) -> pd.DataFrame:
    """Name numerically labelled columns after the features, by position; string labels are kept."""
    if df.columns.dtype not in (np.int64, np.uint64, np.float64):
        return df
    if len(df.columns) != len(features):
        raise coded(
            2110,
            ValueError,
            f"Data does not have the same number of features as signature. Signature requires {len(features)} "
            f"features, but have {len(df.columns)} in input data.",
        )
    renamed = df.copy(deep=False)
    renamed.columns = [f.name for f in features]
    return renamed


def _type_ok(dtype: Any, feature: FeatureSpec) -> bool:
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if isinstance(dtype, pd.StringDtype):
        return feature.dtype is DataType.STRING
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        dtype = np.dtype(dtype.type) if dtype.type is not None else np.dtype(object)
    dtype = np.dtype(dtype)
    if feature.dtype.is_integer():
        return bool(np.issubdtype(dtype, np.integer))
    if feature.dtype.is_float():
        return bool(np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.floating))
    if feature.dtype is DataType.TIMESTAMP_NTZ:
        return bool(np.issubdtype(dtype, np.datetime64))
    if feature.dtype is DataType.STRING:
        return bool(dtype.kind == "U")
    if feature.dtype is DataType.BYTES:
        return bool(dtype.kind == "S")
    return bool(np.can_cast(dtype, np.dtype(feature.dtype.numpy_type), casting="no"))


def _type_error(feature: FeatureSpec, series: pd.Series) -> ValueError:
    return coded(
        2112,
        ValueError,
        f"Data Validation Error in feature {feature.name}: Feature type {feature.dtype} is not met by all elements "
        f"in {series}.",
    )  # type: ignore[return-value]


def validate_pandas_df(df: pd.DataFrame, features: Sequence[BaseFeatureSpec]) -> None:
    """Raise Snowflake's validation errors when ``df`` cannot feed ``features`` (extra columns allowed)."""
    for feature in features:
        if feature.name not in df.columns:
            raise coded(
                2112,
                ValueError,
                f"Data Validation Error: feature {feature.name} does not exist in data. Available columns are "
                f"{df.columns}.",
            )
        series = df[feature.name]
        if series.isna().any():
            series = series.dropna().convert_dtypes()
        if isinstance(feature, FeatureGroupSpec):
            if series.dtype != np.object_:
                raise coded(
                    2112,
                    ValueError,
                    f"Data Validation Error in feature group {feature.name}: It needs to be a dictionary or list of "
                    f"dictionary, but get {series.dtype}.",
                )
            continue
        assert isinstance(feature, FeatureSpec)
        if series.dtype != np.object_:
            if not _type_ok(series.dtype, feature):
                raise _type_error(feature, series)
            if feature.shape:
                raise coded(
                    2112,
                    ValueError,
                    f"Data Validation Error in feature {feature.name}: Feature is a array type feature while scalar "
                    "data is provided.",
                )
            continue
        if series.empty:
            continue
        first = series.iloc[0]
        if isinstance(first, list | np.ndarray):
            kind = "list" if isinstance(first, list) else "array"
            if not feature.shape:
                raise coded(
                    2112,
                    ValueError,
                    f"Data Validation Error in feature {feature.name}: Feature is a scalar feature while {kind} data "
                    "is provided.",
                )
            arrays = []
            for row in series:
                try:
                    arr = np.array(row)
                except ValueError:
                    raise coded(
                        2112,
                        ValueError,
                        f"Unable to construct signature: Ragged nested or Unsupported list-like data {row} confronted.",
                    ) from None
                if not _type_ok(arr.dtype, feature):
                    raise _type_error(feature, series)
                arrays.append(arr)
            if any(d != -1 for d in feature.shape):
                for arr in arrays:
                    if arr.ndim != len(feature.shape) or any(
                        e != -1 and e != a for e, a in zip(feature.shape, arr.shape, strict=True)
                    ):
                        raise coded(
                            2112,
                            ValueError,
                            f"Data Validation Error in feature {feature.name}: Feature shape {feature.shape} is not "
                            f"met by all elements in {series}.",
                        )
        elif isinstance(first, str | bytes):
            if feature.shape:
                raise coded(
                    2112,
                    ValueError,
                    f"Data Validation Error in feature {feature.name}: Feature is a array type feature while scalar "
                    "data is provided.",
                )
            wanted = DataType.STRING if isinstance(first, str) else DataType.BYTES
            if feature.dtype is not wanted:
                raise _type_error(feature, series)


# -- params ---------------------------------------------------------------------------------------


def validate_params(params: dict[str, Any] | None, specs: Sequence[BaseParamSpec]) -> None:
    if params and not specs:
        raise coded(
            2110,
            ValueError,
            f"Parameters were provided ({sorted(params.keys())}), but this method does not accept any parameters.",
        )
    if not params or not specs:
        return
    groups: dict[str, list[str]] = {}
    for key in params:
        groups.setdefault(key.upper(), []).append(key)
    dups = [names for names in groups.values() if len(names) > 1]
    if dups:
        raise coded(
            2110,
            ValueError,
            f"Duplicate parameter(s) provided with different cases: {dups}. Parameter names are case-insensitive.",
        )
    by_name = {s.name.upper(): s for s in specs}
    unknown = sorted(k for k in params if k.upper() not in by_name)
    if unknown:
        raise coded(
            2110,
            ValueError,
            f"Unknown parameter(s): {unknown}. Valid parameters are: {sorted(s.name for s in specs)}",
        )
    for key, value in params.items():
        _check_value(by_name[key.upper()], value, key)


def _check_value(spec: BaseParamSpec, value: Any, path: str) -> None:
    if value is None:
        return
    if isinstance(spec, ParamGroupSpec):
        _check_group(spec, value, path, spec.shape or ())
        return
    assert isinstance(spec, ParamSpec)
    check_param_value(spec.dtype, spec.shape, value)
    try:
        arr = np.array(value, dtype=spec.dtype.numpy_type)
        problem = shape_problem(arr, spec.shape)
        if problem:
            raise ValueError(f"Parameter '{path}': {problem[0].lower()}{problem[1:]}")
    except (ValueError, TypeError, OverflowError) as exc:
        raise coded(
            2110,
            ValueError,
            f"Parameter '{path}': value {value!r} (type: {type(value).__name__}) is not compatible with dtype "
            f"{spec.dtype} and shape {spec.shape}. {exc}",
        ) from None


def _check_group(spec: ParamGroupSpec, value: Any, path: str, dims: tuple[int, ...]) -> None:
    if dims:
        if not isinstance(value, list):
            raise coded(
                2110,
                ValueError,
                f"Parameter '{path}' expected a list (shape={spec.shape}), got {type(value).__name__}.",
            )
        if dims[0] != -1 and len(value) != dims[0]:
            raise coded(2110, ValueError, f"Parameter '{path}' expected length {dims[0]}, got {len(value)}.")
        for i, item in enumerate(value):
            _check_group(spec, item, f"{path}[{i}]", dims[1:])
        return
    if not isinstance(value, dict):
        raise coded(2110, ValueError, f"Parameter '{path}' expected a dict, got {type(value).__name__}.")
    seen: set[str] = set()
    children = {s.name.upper(): s for s in spec.specs}
    for key, item in value.items():
        if not isinstance(key, str):
            raise coded(
                2110,
                TypeError,
                f"Parameter '{path}' has non-string key: {key} (type: {type(key).__name__}). Dict parameter keys must be "
                "strings.",
            )
        if key.upper() in seen:
            raise coded(
                2110,
                ValueError,
                f"Parameter '{path}' has duplicate case-insensitive key '{key}'. Dict parameter keys are case-insensitive.",
            )
        seen.add(key.upper())
        if key.upper() not in children:
            raise coded(2110, ValueError, f"Unknown key(s) '{key}' in parameter '{path}'.")
        _check_value(children[key.upper()], item, f"{path}.{key}")


def _coerce(spec: BaseParamSpec, value: Any) -> Any:
    if isinstance(spec, ParamSpec) and spec.dtype.is_float():
        return _to_float(value)
    return value


def _to_float(value: Any) -> Any:
    if isinstance(value, bool | np.bool_) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return float(value)
    if isinstance(value, list | tuple):
        return type(value)(_to_float(v) for v in value)
    return value


def _merge(spec: ParamGroupSpec, current: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(current)
    children = {s.name.upper(): s for s in spec.specs}
    for key, value in override.items():
        child = children[key.upper()]
        if (
            isinstance(child, ParamGroupSpec)
            and isinstance(value, dict)
            and isinstance(merged.get(child.name), dict)
        ):
            merged[child.name] = _merge(child, merged[child.name], value)
        else:
            merged[child.name] = value
    return merged


def resolve_params(params: dict[str, Any] | None, specs: Sequence[BaseParamSpec]) -> dict[str, Any]:
    """Signature defaults overridden case-insensitively by ``params``, keyed by the signature's spelling."""
    resolved: dict[str, Any] = {s.name: _coerce(s, s.default_value) for s in specs}
    by_name = {s.name.upper(): s for s in specs}
    for key, value in (params or {}).items():
        spec = by_name[key.upper()]
        current = resolved[spec.name]
        if isinstance(spec, ParamGroupSpec) and isinstance(value, dict) and isinstance(current, dict):
            resolved[spec.name] = _merge(spec, current, value)
        else:
            resolved[spec.name] = _coerce(spec, value)
    return resolved
