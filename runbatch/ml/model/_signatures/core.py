"""DataType, feature and param specs, and ModelSignature, as ``snowflake.ml.model.model_signature``."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

__all__ = [
    "BaseFeatureSpec",
    "BaseParamSpec",
    "DataType",
    "FeatureGroupSpec",
    "FeatureSpec",
    "ModelSignature",
    "ParamGroupSpec",
    "ParamSpec",
    "coded",
]


def coded(code: int, exc_type: type[Exception], message: str) -> Exception:
    """An exception carrying Snowflake's error-code prefix, e.g. ``ValueError("(2112) ...")``."""
    return exc_type(f"({code}) {message}")


class DataType(enum.Enum):
    INT8 = ("int8", np.int8)
    INT16 = ("int16", np.int16)
    INT32 = ("int32", np.int32)
    INT64 = ("int64", np.int64)
    FLOAT = ("float", np.float32)
    DOUBLE = ("double", np.float64)
    UINT8 = ("uint8", np.uint8)
    UINT16 = ("uint16", np.uint16)
    UINT32 = ("uint32", np.uint32)
    UINT64 = ("uint64", np.uint64)
    BOOL = ("bool", np.bool_)
    STRING = ("string", np.str_)
    BYTES = ("bytes", np.bytes_)
    TIMESTAMP_NTZ = ("datetime64[ns]", "datetime64[ns]")
    OBJECT = ("object", np.object_)

    def __init__(self, value: str, numpy_type: Any) -> None:
        self._value = value
        self._numpy_type = numpy_type

    def __repr__(self) -> str:
        return f"DataType.{self.name}"

    __str__ = __repr__

    @property
    def numpy_type(self) -> Any:
        return self._numpy_type

    def is_integer(self) -> bool:
        return self in _INTEGER_TYPES

    def is_float(self) -> bool:
        return self in (DataType.FLOAT, DataType.DOUBLE)

    @classmethod
    def from_numpy_type(cls, input_type: Any) -> DataType:
        if isinstance(input_type, pd.api.extensions.ExtensionDtype):
            if isinstance(input_type, pd.StringDtype):
                return DataType.STRING
            input_type = input_type.type
        try:
            dtype = np.dtype(input_type)
        except TypeError:
            raise coded(
                2103, NotImplementedError, f"Type {input_type} is not supported as a DataType."
            ) from None
        if dtype.kind == "M":
            return DataType.TIMESTAMP_NTZ
        if dtype.kind == "U":
            return DataType.STRING
        if dtype.kind == "S":
            return DataType.BYTES
        for member in cls:
            if member is DataType.TIMESTAMP_NTZ:
                continue
            if np.can_cast(dtype, np.dtype(member.numpy_type), casting="no"):
                return member
        raise coded(2103, NotImplementedError, f"Type {dtype} is not supported as a DataType.")

    @classmethod
    def from_python_type(cls, python_type: Any) -> DataType:
        import datetime
        import typing

        if python_type is list:
            raise coded(
                2112,
                ValueError,
                "Bare 'list' type is not supported. Please specify the element type, e.g., list[str].",
            )
        if typing.get_origin(python_type) is list:
            (inner,) = typing.get_args(python_type)
            return cls.from_python_type(inner)
        mapping = {
            int: DataType.INT64,
            float: DataType.DOUBLE,
            str: DataType.STRING,
            bool: DataType.BOOL,
            bytes: DataType.BYTES,
            datetime.datetime: DataType.TIMESTAMP_NTZ,
        }
        if python_type in mapping:
            return mapping[python_type]
        supported = [int, float, str, bool, bytes, datetime.datetime]
        raise coded(
            2103,
            NotImplementedError,
            f"Python type {python_type} is not supported as a DataType. Supported types are: {supported}.",
        )

    def as_arrow_type(self) -> pa.DataType:
        return _ARROW[self]


_INTEGER_TYPES = frozenset(
    {
        DataType.INT8,
        DataType.INT16,
        DataType.INT32,
        DataType.INT64,
        DataType.UINT8,
        DataType.UINT16,
        DataType.UINT32,
        DataType.UINT64,
    }
)
_ARROW: dict[DataType, pa.DataType] = {
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
    DataType.UINT8: pa.uint8(),
    DataType.UINT16: pa.uint16(),
    DataType.UINT32: pa.uint32(),
    DataType.UINT64: pa.uint64(),
    DataType.BOOL: pa.bool_(),
    DataType.STRING: pa.string(),
    DataType.BYTES: pa.binary(),
    DataType.TIMESTAMP_NTZ: pa.timestamp("ns"),
    DataType.OBJECT: pa.string(),
}

_PANDAS_NULLABLE = {
    DataType.INT8: "Int8",
    DataType.INT16: "Int16",
    DataType.INT32: "Int32",
    DataType.INT64: "Int64",
    DataType.UINT8: "UInt8",
    DataType.UINT16: "UInt16",
    DataType.UINT32: "UInt32",
    DataType.UINT64: "UInt64",
    DataType.FLOAT: "Float32",
    DataType.DOUBLE: "Float64",
    DataType.BOOL: "boolean",
    DataType.STRING: "string",
}


def _check_shape(shape: Any, *, strict: bool) -> tuple[int, ...] | None:
    if (shape is not None if strict else bool(shape)) and not isinstance(shape, tuple):
        raise coded(2114, TypeError, "Shape should be a tuple if presented.")
    return shape  # type: ignore[no-any-return]


class BaseFeatureSpec:
    """A named input or output of a model function."""

    def __init__(self, name: str, shape: tuple[int, ...] | None) -> None:
        self._name = name
        self._shape = _check_shape(shape, strict=False)

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._shape

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def as_arrow_type(self) -> pa.DataType:
        raise NotImplementedError

    def _repr(self, level: int) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self._repr(0)


class FeatureSpec(BaseFeatureSpec):
    def __init__(
        self, name: str, dtype: DataType, shape: tuple[int, ...] | None = None, nullable: bool = True
    ) -> None:
        super().__init__(name, shape)
        if not isinstance(dtype, DataType):
            raise coded(2114, TypeError, "dtype should be a model signature datatype.")
        self._dtype = dtype
        self._nullable = nullable

    @property
    def dtype(self) -> DataType:
        return self._dtype

    @property
    def nullable(self) -> bool:
        return self._nullable

    def as_dtype(self, force_numpy_dtype: bool = False) -> Any:
        if self._shape:
            return np.object_
        if self._dtype is DataType.TIMESTAMP_NTZ:
            return "datetime64[ns]"
        if self._nullable and not force_numpy_dtype and self._dtype in _PANDAS_NULLABLE:
            return _PANDAS_NULLABLE[self._dtype]
        return self._dtype.numpy_type

    def as_arrow_type(self) -> pa.DataType:
        t = self._dtype.as_arrow_type()
        for _ in self._shape or ():
            t = pa.list_(t)
        return t

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureSpec):
            return False
        return (self._name, self._dtype, self._shape) == (other._name, other._dtype, other._shape)

    def __hash__(self) -> int:
        return hash((self._name, self._dtype, self._shape))

    def _repr(self, level: int) -> str:
        shape = f", shape={self._shape!r}" if self._shape else ""
        return f"FeatureSpec(dtype={self._dtype!r}, name={self._name!r}{shape}, nullable={self._nullable!r})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self._dtype.name, "name": self._name, "nullable": self._nullable}
        if self._shape is not None:
            out["shape"] = self._shape
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureSpec:
        shape = d.get("shape")
        return cls(
            name=d["name"],
            dtype=DataType[d["type"]],
            shape=tuple(shape) if shape else None,
            nullable=d.get("nullable", False),
        )


class FeatureGroupSpec(BaseFeatureSpec):
    def __init__(self, name: str, specs: list[BaseFeatureSpec], shape: tuple[int, ...] | None = None) -> None:
        super().__init__(name, shape)
        if not specs:
            raise coded(2110, ValueError, "No children feature specs.")
        if any(s.name is None for s in specs):
            raise coded(2110, ValueError, "All children feature specs have to have name.")
        self._specs = list(specs)

    @property
    def specs(self) -> list[BaseFeatureSpec]:
        return self._specs

    def as_dtype(self, force_numpy_dtype: bool = False) -> Any:
        return np.object_

    def as_arrow_type(self) -> pa.DataType:
        # Grouped outputs (lists of records) are written as JSON text, one value per row.
        return pa.string()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FeatureGroupSpec):
            return False
        return (self._name, self._specs, self._shape) == (other._name, other._specs, other._shape)

    def __hash__(self) -> int:
        return hash((self._name, self._shape))

    def _repr(self, level: int) -> str:
        return _group_repr("FeatureGroupSpec", self._name, self._specs, self._shape, level)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self._name, "specs": [s.to_dict() for s in self._specs]}
        if self._shape is not None:
            out["shape"] = self._shape
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureGroupSpec:
        specs: list[BaseFeatureSpec] = [
            FeatureGroupSpec.from_dict(s) if "specs" in s else FeatureSpec.from_dict(s) for s in d["specs"]
        ]
        shape = d.get("shape")
        return cls(name=d["name"], specs=specs, shape=tuple(shape) if shape else None)


def _group_repr(head: str, name: str, specs: Sequence[Any], shape: tuple[int, ...] | None, level: int) -> str:
    """Snowflake's multi-line repr of a group spec, indented for nesting at ``level``."""
    pad = "    " * (level + 1)
    children = ",\n".join(pad + "    " + s._repr(level + 2) for s in specs)
    shape_text = f", shape={shape!r}" if shape else ""
    return (
        f"{head}(\n{pad}name={name!r},\n{pad}specs=[\n{children}\n{pad}]{shape_text}\n" + "    " * level + ")"
    )


class BaseParamSpec:
    """A keyword parameter of a model function, with a default."""

    def __init__(self, name: str, shape: tuple[int, ...] | None) -> None:
        self._name = name
        self._shape = _check_shape(shape, strict=True)

    @property
    def name(self) -> str:
        return self._name

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._shape

    @property
    def default_value(self) -> Any:
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def _repr(self, level: int) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self._repr(0)


def check_param_value(dtype: DataType, shape: tuple[int, ...] | None, value: Any) -> None:
    """Python-type check of a param value's leaves (§1.5), raising the Snowflake messages."""
    if dtype.is_integer() or dtype.is_float():
        expected = "int" if dtype.is_integer() else "int or float"
        for elem in _leaves(value) if (shape or isinstance(value, list | tuple)) else [value]:
            ok_types: tuple[type, ...] = (
                (int, np.integer) if dtype.is_integer() else (int, float, np.integer, np.floating)
            )
            if isinstance(elem, bool | np.bool_) or not isinstance(elem, ok_types):
                raise coded(
                    2110,
                    ValueError,
                    f"Value {elem!r} (type: {type(elem).__name__}) is not compatible with dtype {dtype}. "
                    f"Expected {expected}.",
                )


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def shape_problem(arr: np.ndarray[Any, Any], shape: tuple[int, ...] | None) -> str | None:
    """Why ``arr`` does not have ``shape`` (None when it does); -1 matches any length."""
    if shape is None:
        return None if arr.ndim == 0 else f"Expected scalar value, got array with shape {arr.shape}"
    if arr.ndim != len(shape):
        return f"Expected {len(shape)}-dimensional value, got {arr.ndim}-dimensional"
    for i, (expected, actual) in enumerate(zip(shape, arr.shape, strict=True)):
        if expected != -1 and expected != actual:
            return f"Dimension {i}: expected {expected}, got {actual}"
    return None


class ParamSpec(BaseParamSpec):
    def __init__(
        self, name: str, dtype: DataType, default_value: Any, shape: tuple[int, ...] | None = None
    ) -> None:
        super().__init__(name, shape)
        self._dtype = dtype
        self._default_value = default_value
        if default_value is not None:
            check_param_value(dtype, shape, default_value)
            try:
                arr = np.array(default_value, dtype=dtype.numpy_type)
            except (TypeError, OverflowError, ValueError) as exc:
                raise coded(
                    2110,
                    ValueError,
                    f"Default value {default_value!r} (type: {type(default_value).__name__}) is not compatible "
                    f"with dtype {dtype} and shape {shape}. {exc}",
                ) from None
            problem = shape_problem(arr, shape)
            if problem:
                raise coded(2110, ValueError, problem)

    @property
    def dtype(self) -> DataType:
        return self._dtype

    @property
    def default_value(self) -> Any:
        return self._default_value

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParamSpec):
            return False
        return (self._name, self._dtype, self._shape) == (other._name, other._dtype, other._shape) and bool(
            np.array_equal(
                np.array(self._default_value, dtype=object), np.array(other._default_value, dtype=object)
            )
        )

    def __hash__(self) -> int:
        return hash((self._name, self._dtype, self._shape))

    def _repr(self, level: int) -> str:
        shape = f", shape={self._shape!r}" if self._shape else ""
        return f"ParamSpec(name={self._name!r}, dtype={self._dtype!r}, default_value={self._default_value!r}{shape})"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self._name,
            "dtype": self._dtype.name,
            "default_value": self._default_value,
        }
        if self._shape is not None:
            out["shape"] = self._shape
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParamSpec:
        shape = d.get("shape")
        return cls(
            d["name"], DataType[d["dtype"]], d["default_value"], tuple(shape) if shape is not None else None
        )


class ParamGroupSpec(BaseParamSpec):
    def __init__(
        self,
        name: str,
        specs: list[BaseParamSpec],
        default_value: Any = None,
        shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__(name, shape)
        if not specs:
            raise coded(2110, ValueError, "No children param specs.")
        self._specs = list(specs)
        self._explicit_default = default_value

    @property
    def specs(self) -> list[BaseParamSpec]:
        return self._specs

    @property
    def dtype(self) -> DataType:
        return DataType.OBJECT

    @property
    def default_value(self) -> Any:
        if self._explicit_default is not None:
            return self._explicit_default
        base = {s.name: s.default_value for s in self._specs}
        if not self._shape:
            return base

        def replicate(dims: tuple[int, ...]) -> Any:
            if not dims:
                return dict(base)
            if dims[0] == -1:
                return []
            return [replicate(dims[1:]) for _ in range(dims[0])]

        return replicate(self._shape)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ParamGroupSpec):
            return False
        return (self._name, self._specs, self._shape, self._explicit_default) == (
            other._name,
            other._specs,
            other._shape,
            other._explicit_default,
        )

    def __hash__(self) -> int:
        return hash((self._name, self._shape))

    def _repr(self, level: int) -> str:
        return _group_repr("ParamGroupSpec", self._name, self._specs, self._shape, level)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self._name, "specs": [s.to_dict() for s in self._specs]}
        if self._shape is not None:
            out["shape"] = self._shape
        if self._explicit_default is not None:
            out["default_value"] = self._explicit_default
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParamGroupSpec:
        specs: list[BaseParamSpec] = [
            ParamGroupSpec.from_dict(s) if "specs" in s else ParamSpec.from_dict(s) for s in d["specs"]
        ]
        shape = d.get("shape")
        return cls(d["name"], specs, d.get("default_value"), tuple(shape) if shape is not None else None)


def _param_names(params: Sequence[BaseParamSpec]) -> list[str]:
    names: list[str] = []
    for p in params:
        if isinstance(p, ParamGroupSpec):
            names.extend(s.name for s in p.specs)
        else:
            names.append(p.name)
    return names


class ModelSignature:
    def __init__(
        self,
        inputs: Sequence[BaseFeatureSpec],
        outputs: Sequence[BaseFeatureSpec],
        params: Sequence[BaseParamSpec] | None = None,
    ) -> None:
        self._inputs = list(inputs)
        self._outputs = list(outputs)
        self._params = list(params or [])
        seen: set[str] = set()
        dups: list[str] = []
        for name in _param_names(self._params):
            if name.upper() in seen:
                dups.append(name)
            seen.add(name.upper())
        if dups:
            raise coded(
                2110,
                ValueError,
                f"Found duplicate parameter named resolved as {', '.join(sorted(dups))}. Parameters must have "
                "distinct names (case-insensitive).",
            )
        input_names = {f.name.upper() for f in self._inputs}
        clashes = sorted(n for n in _param_names(self._params) if n.upper() in input_names)
        if clashes:
            raise coded(
                2110,
                ValueError,
                f"Found parameter(s) with the same name as input feature(s): {', '.join(clashes)}. Parameters "
                "and inputs must have distinct names (case-insensitive).",
            )

    @property
    def inputs(self) -> list[BaseFeatureSpec]:
        return self._inputs

    @property
    def outputs(self) -> list[BaseFeatureSpec]:
        return self._outputs

    @property
    def params(self) -> list[BaseParamSpec]:
        return self._params

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ModelSignature):
            return False
        return (self._inputs, self._outputs, self._params) == (other._inputs, other._outputs, other._params)

    def __hash__(self) -> int:
        return hash(len(self._inputs))

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [s.to_dict() for s in self._inputs],
            "outputs": [s.to_dict() for s in self._outputs],
            "params": [p.to_dict() for p in self._params],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelSignature:
        def feature(s: dict[str, Any]) -> BaseFeatureSpec:
            return FeatureGroupSpec.from_dict(s) if "specs" in s else FeatureSpec.from_dict(s)

        def param(s: dict[str, Any]) -> BaseParamSpec:
            return ParamGroupSpec.from_dict(s) if "specs" in s else ParamSpec.from_dict(s)

        return cls(
            inputs=[feature(s) for s in d["inputs"]],
            outputs=[feature(s) for s in d["outputs"]],
            params=[param(s) for s in d.get("params") or []],
        )

    def __repr__(self) -> str:
        def section(name: str, items: Sequence[BaseFeatureSpec] | Sequence[BaseParamSpec]) -> str:
            if not items:
                return f"    {name}=[]"
            body = ",\n".join("        " + i._repr(2) for i in items)
            return f"    {name}=[\n{body}\n    ]"

        return (
            "ModelSignature(\n"
            + ",\n".join(
                [
                    section("inputs", self._inputs),
                    section("outputs", self._outputs),
                    section("params", self._params),
                ]
            )
            + "\n)"
        )
