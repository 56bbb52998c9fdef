"""Signature inference from sample data, and conversion of local data to DataFrames.

Handlers are tried in Snowflake's order: pandas, numpy array, list of builtins, sequence of
arrays. Names: string column labels are kept; numeric labels and positions become
``input_feature_<k>`` / ``output_feature_<k>``.
"""

from __future__ import annotations

import datetime
import sys
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from runbatch.ml.model._signatures.core import (
    BaseFeatureSpec,
    BaseParamSpec,
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ModelSignature,
    ParamSpec,
    coded,
)

__all__ = [
    "convert_local_data_to_df",
    "infer_features",
    "infer_param",
    "infer_signature",
    "local_data",
    "truncate",
]

Role = Literal["input", "output"]


def local_data(data: Any) -> Any:
    """Torch tensors as numpy arrays (a sequence of tensors as a list of arrays); anything else as is.

    Snowflake's tensor data handlers delegate to numpy the same way. torch is only looked up,
    never imported: a tensor cannot exist unless torch is loaded.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        return data
    if isinstance(data, torch.Tensor):
        return data.detach().cpu().numpy()
    if (
        isinstance(data, Sequence)
        and not isinstance(data, str)
        and data
        and all(isinstance(t, torch.Tensor) for t in data)
    ):
        return [t.detach().cpu().numpy() for t in data]
    return data


def _kind(data: Any) -> str | None:
    if isinstance(data, pd.DataFrame | pd.Series):
        return "pandas"
    if isinstance(data, np.ndarray):
        return "numpy"
    if _is_builtin_list(data):
        return "list"
    if (
        isinstance(data, Sequence)
        and not isinstance(data, str)
        and data
        and all(isinstance(a, np.ndarray) for a in data)
    ):
        return "arrays"
    return None


def _acceptable(value: Any) -> bool:
    if isinstance(value, str | int | float | bool | datetime.datetime) and not isinstance(value, np.integer):
        return True
    if isinstance(value, Mapping):
        return all(isinstance(k, str) and _acceptable(v) for k, v in value.items())
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return all(_acceptable(v) for v in value)
    return False


def _is_builtin_list(data: Any) -> bool:
    return (
        isinstance(data, Sequence)
        and not isinstance(data, str | bytes)
        and len(data) > 0
        and not isinstance(data[0], np.ndarray)
        and all(_acceptable(v) for v in data)
    )


def _count(data: Any, kind: str) -> int:
    if kind == "arrays":
        return min(len(a) for a in data)
    return len(data)


def truncate(data: Any, length: int | None = 100) -> Any:
    data = local_data(data)
    kind = _kind(data)
    if kind is None:
        raise coded(
            2103,
            NotImplementedError,
            f"Unable to infer model signature: Un-supported type provided {type(data)} for data truncate.",
        )
    if length is None:
        return data
    rows = _count(data, kind)
    if rows <= length:
        return data
    warnings.warn(
        f"The sample input has {rows} rows. Using the first 100 rows to define the inputs and outputs of the "
        "model and the data types of each. Use `signatures` parameter to specify model inputs and outputs "
        "manually if the automatic inference is not correct.",
        UserWarning,
        stacklevel=3,
    )
    if kind == "pandas":
        return data.head(length)
    if kind == "arrays":
        return [a[:length] for a in data]
    return data[:length]


# -- validation of local data (shared by inference and run-time conversion) ---------------------


def _validate_pandas(df: pd.DataFrame | pd.Series) -> pd.DataFrame:
    if isinstance(df, pd.Series):
        if df.empty:
            raise coded(2112, ValueError, "Data Validation Error: Empty data is found.")
        df = df.to_frame()
    if df.columns.has_duplicates:
        raise coded(2112, ValueError, "Data Validation Error: Duplicate column index is found.")
    if len(df.columns) == 0:
        raise coded(2112, ValueError, "Data Validation Error: Empty data is found.")
    if df.columns.dtype not in (np.int64, np.uint64, np.float64, np.object_) and not isinstance(
        df.columns.dtype, pd.StringDtype
    ):
        raise coded(2112, ValueError, "Data Validation Error: Unsupported column index type is found.")
    for col in df.columns:
        series = df[col]
        if series.isna().any():
            warnings.warn(
                f"Null value detected in column {col}, model signature inference might not be accurate, or your "
                "prediction might fail if your model does not support null input. If this is not expected, please "
                "check your input dataframe.",
                UserWarning,
                stacklevel=4,
            )
            series = series.dropna().convert_dtypes()
        if series.empty or series.dtype != np.object_:
            continue
        first = series.iloc[0]
        if not all(isinstance(v, type(first)) for v in series):
            raise coded(
                2112,
                ValueError,
                f"Data Validation Error: Inconsistent type of element in object found in column data {series}.",
            )
        if isinstance(first, np.ndarray):
            types = {DataType.from_numpy_type(v.dtype) for v in series}
            if len(types) > 1:
                raise coded(
                    2112,
                    ValueError,
                    f"Data Validation Error: Inconsistent type of element in object found in column data {series}.",
                )
        elif not isinstance(first, str | bytes | dict | list | bool | np.bool_):
            raise coded(2112, ValueError, f"Data Validation Error: Unsupported type confronted in {series}")
    return df


def _validate(data: Any, kind: str) -> Any:
    if kind == "pandas":
        return _validate_pandas(data)
    if kind == "numpy":
        if data.shape == (0,):
            raise coded(2112, ValueError, "Data Validation Error: Empty data is found.")
        if data.shape == ():
            raise coded(2112, ValueError, "Data Validation Error: Scalar data is found.")
        return data
    if kind == "list":
        if not all(isinstance(v, type(data[0])) for v in data):
            raise coded(
                2112, ValueError, f"Data Validation Error: Inconsistent type of object found in data {data}."
            )
        if pd.DataFrame(data).isna().any().any():
            raise coded(2112, ValueError, f"Data Validation Error: Ill-shaped list data {data} confronted.")
        return data
    for arr in data:
        _validate(arr, "numpy")
    return data


def convert_local_data_to_df(data: Any, *, ensure_serializable: bool = True) -> pd.DataFrame:
    """Local data of any supported kind as a DataFrame (numeric column labels for arrays and lists)."""
    data = local_data(data)
    kind = _kind(data)
    if kind is None:
        raise coded(
            2103, NotImplementedError, f"Data Validation Error: Un-supported type {type(data)} provided."
        )
    data = _validate(data, kind)
    if kind == "pandas":
        return data if isinstance(data, pd.DataFrame) else data.to_frame()
    if kind == "numpy":
        return _array_to_df(data, ensure_serializable)
    if kind == "list":
        return pd.DataFrame(data)
    return pd.DataFrame({i: (a.tolist() if ensure_serializable else list(a)) for i, a in enumerate(data)})


def _array_to_df(arr: np.ndarray[Any, Any], ensure_serializable: bool) -> pd.DataFrame:
    if arr.ndim == 1:
        return pd.DataFrame(arr)
    if arr.ndim == 2:
        return pd.DataFrame(arr)
    return pd.DataFrame(
        {
            i: [(arr[r, i].tolist() if ensure_serializable else arr[r, i]) for r in range(arr.shape[0])]
            for i in range(arr.shape[1])
        }
    )


# -- inference ------------------------------------------------------------------------------------


def infer_features(data: Any, role: Role) -> list[BaseFeatureSpec]:
    data = local_data(data)
    kind = _kind(data)
    if kind is None:
        raise coded(
            2103,
            NotImplementedError,
            f"Unable to infer model signature: Un-supported type provided {type(data)} for X type inference.",
        )
    data = _validate(data, kind)
    if kind == "numpy" and data.dtype != np.object_:
        dtype = DataType.from_numpy_type(data.dtype)
        if data.ndim == 1:
            return [FeatureSpec(f"{role}_feature_0", dtype, nullable=False)]
        shape = tuple(data.shape[2:]) or None
        return [
            FeatureSpec(f"{role}_feature_{i}", dtype, shape=shape, nullable=False)
            for i in range(data.shape[1])
        ]
    if kind == "arrays":
        frame = pd.DataFrame({i: list(a) for i, a in enumerate(data)})
        return _infer_pandas(frame, role)
    frame = data if kind == "pandas" else convert_local_data_to_df(data)
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    return _infer_pandas(frame, role)


def _infer_pandas(df: pd.DataFrame, role: Role) -> list[BaseFeatureSpec]:
    numeric_labels = df.columns.dtype in (np.int64, np.uint64, np.float64)
    specs: list[BaseFeatureSpec] = []
    for label in df.columns:
        name = f"{role}_feature_{label}" if numeric_labels else str(label)
        series = df[label]
        if series.isna().all():
            raise coded(
                2112,
                ValueError,
                f"Data Validation Error: There is no non-null data in column {label} so the signature cannot be "
                "inferred.",
            )
        if series.isna().any():
            warnings.warn(
                f"Null value detected in column {label}, the column's original pandas dtype will be used for "
                "signature inference. If your model does not support null input, prediction may fail. If this is not "
                "expected, please check your input dataframe or specify signatures explicitly via the `signatures` "
                "parameter.",
                UserWarning,
                stacklevel=4,
            )
            series = series.dropna()
        spec = _infer_series(name, series)
        if spec is not None:
            specs.append(spec)
    return specs


def _infer_series(name: str, series: pd.Series) -> BaseFeatureSpec | None:
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        if cats.dtype == np.object_:
            first = cats[0]
            if isinstance(first, str):
                return FeatureSpec(name, DataType.STRING)
            if isinstance(first, bytes):
                return FeatureSpec(name, DataType.BYTES)
            raise coded(2112, ValueError, f"Data Validation Error: Unsupported type confronted in {first}")
        return FeatureSpec(name, DataType.from_numpy_type(cats.dtype))
    if dtype == np.object_:
        first = series.iloc[0]
        if isinstance(first, list):
            return _unify([_infer_list(name, v) for v in series], series)
        if isinstance(first, dict):
            return _infer_dict(name, first)
        if isinstance(first, np.ndarray):
            shapes = {v.shape for v in series}
            shape = first.shape if len(shapes) == 1 else (-1,)
            return FeatureSpec(name, DataType.from_numpy_type(first.dtype), shape=shape)
        if isinstance(first, str):
            return FeatureSpec(name, DataType.STRING)
        if isinstance(first, bytes):
            return FeatureSpec(name, DataType.BYTES)
        if isinstance(first, bool | np.bool_):
            return FeatureSpec(name, DataType.BOOL)
        return None
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return FeatureSpec(name, DataType.TIMESTAMP_NTZ)
    return FeatureSpec(name, DataType.from_numpy_type(dtype))


def _infer_list(name: str, values: list[Any]) -> BaseFeatureSpec:
    if not values:
        raise coded(2112, ValueError, "Data Validation Error: Empty list is found.")
    if all(isinstance(v, dict) for v in values):
        group = _infer_dict(name, values[0])
        return FeatureGroupSpec(name, group.specs, shape=(-1,))
    try:
        arr = np.array(values)
    except ValueError:
        arr = np.array([None], dtype=object)
    if arr.dtype == np.object_:
        raise coded(
            2112,
            ValueError,
            f"Unable to construct signature: Ragged nested or Unsupported list-like data {values} confronted.",
        )
    return FeatureSpec(name, DataType.from_numpy_type(arr.dtype), shape=arr.shape)


def _unify(specs: list[BaseFeatureSpec], series: pd.Series) -> BaseFeatureSpec:
    ref = specs[0]
    for spec in specs[1:]:
        if spec.shape != ref.shape:
            ref = _with_shape(ref, (-1,))
            spec = _with_shape(spec, (-1,))
        if spec != ref:
            raise coded(
                2112,
                ValueError,
                f"Unable to construct signature: Ragged nested or Unsupported list-like data {series} confronted.",
            )
    return ref


def _with_shape(spec: BaseFeatureSpec, shape: tuple[int, ...]) -> BaseFeatureSpec:
    if isinstance(spec, FeatureGroupSpec):
        return FeatureGroupSpec(spec.name, spec.specs, shape=shape)
    assert isinstance(spec, FeatureSpec)
    return FeatureSpec(spec.name, spec.dtype, shape=shape, nullable=spec.nullable)


def _infer_dict(name: str, d: dict[str, Any]) -> FeatureGroupSpec:
    if not d:
        raise coded(2112, ValueError, "Data Validation Error: Empty dictionary is found.")
    children: list[BaseFeatureSpec] = []
    for key, value in d.items():
        if isinstance(value, list):
            children.append(_infer_list(key, value))
        elif isinstance(value, dict):
            children.append(_infer_dict(key, value))
        else:
            children.append(FeatureSpec(key, DataType.from_numpy_type(np.array(value).dtype)))
    return FeatureGroupSpec(name, children)


def _rename(features: list[BaseFeatureSpec], names: list[str] | None) -> list[BaseFeatureSpec]:
    if not names:
        return features
    if len(names) != len(features):
        raise coded(
            2110,
            ValueError,
            f"{len(names)} feature names are provided, while there are {len(features)} features.",
        )
    out: list[BaseFeatureSpec] = []
    for spec, name in zip(features, names, strict=True):
        if isinstance(spec, FeatureGroupSpec):
            out.append(FeatureGroupSpec(name, spec.specs, shape=spec.shape))
        else:
            assert isinstance(spec, FeatureSpec)
            out.append(FeatureSpec(name, spec.dtype, shape=spec.shape, nullable=spec.nullable))
    return out


def infer_param(name: str, value: Any) -> ParamSpec:
    if value is None:
        raise coded(
            2110,
            ValueError,
            f"Cannot infer ParamSpec dtype for parameter '{name}' from None value. Use an explicit ParamSpec to "
            "specify the dtype.",
        )
    if isinstance(value, dict):
        raise coded(
            2110,
            ValueError,
            f"Dict values are not yet supported for parameter '{name}' in dict-based param inference.",
        )
    if isinstance(value, list | tuple):
        if not value:
            raise coded(
                2110,
                ValueError,
                f"Cannot infer ParamSpec dtype for parameter '{name}' from an empty list. Use an explicit ParamSpec "
                "to specify the dtype and shape.",
            )
        spec = _infer_list(name, list(value))
        assert isinstance(spec, FeatureSpec)
        return ParamSpec(name, spec.dtype, value, shape=tuple(-1 for _ in spec.shape or ()))
    try:
        dtype = DataType.from_python_type(type(value))
    except NotImplementedError:
        raise coded(
            2110,
            ValueError,
            f"Cannot infer ParamSpec dtype from value of type {type(value).__name__} for parameter '{name}'.",
        ) from None
    return ParamSpec(name, dtype, value)


def infer_signature(
    input_data: Any,
    output_data: Any,
    input_feature_names: list[str] | None = None,
    output_feature_names: list[str] | None = None,
    input_data_limit: int | None = 100,
    output_data_limit: int | None = 100,
    params: Sequence[BaseParamSpec] | dict[str, Any] | None = None,
) -> ModelSignature:
    """Infer a signature from sample inputs and outputs, as ``snowflake.ml.model.model_signature``."""
    if isinstance(params, dict):
        param_specs: list[BaseParamSpec] = [infer_param(k, v) for k, v in params.items()]
    else:
        param_specs = list(params or [])
    inputs = _rename(infer_features(truncate(input_data, input_data_limit), "input"), input_feature_names)
    outputs = _rename(
        infer_features(truncate(output_data, output_data_limit), "output"), output_feature_names
    )
    return ModelSignature(inputs, outputs, param_specs)
