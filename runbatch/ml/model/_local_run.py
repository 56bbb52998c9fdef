"""``ModelVersion.run`` in the calling process, with Snowflake's validation of local data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from runbatch.errors import InvalidArgumentError
from runbatch.ml.model._signatures.core import FeatureSpec
from runbatch.ml.model._signatures.infer import convert_local_data_to_df
from runbatch.ml.model._signatures.validate import (
    rename_pandas_df,
    resolve_params,
    validate_pandas_df,
    validate_params,
)

if TYPE_CHECKING:
    from runbatch.inference.function import LoadedModel, ModelFunction
    from runbatch.ml.model._model_version import ModelFunctionInfo
    from runbatch.snowpark.dataframe import DataFrame

__all__ = ["run_locally"]


def _partition_name(columns: list[str], name: str | None) -> str | None:
    if name is None:
        return None
    matches = [c for c in columns if c == name] or [c for c in columns if c.upper() == name.upper()]
    if len(matches) != 1:
        raise InvalidArgumentError(
            f"partition_column {name!r} is not a column of the input; the input has columns {columns}."
        )
    return matches[0]


def _call(
    fn: ModelFunction, frame: pd.DataFrame, params: dict[str, Any], partitions: pd.Series | None
) -> pd.DataFrame:
    """The function over ``frame``, one call per partition where partitions apply (as a table
    function ``OVER (PARTITION BY ...)``; a partitioned function without a partition column sees
    the whole input as one partition)."""
    if partitions is None and not fn.partitioned:
        return fn(frame, params)
    if partitions is None:
        return fn(frame, params).reset_index(drop=True)
    # Positions, not the caller's index (which may repeat or run backwards), say where rows go.
    frame = frame.reset_index(drop=True)
    partitions = partitions.reset_index(drop=True)
    pieces = []
    for key, part in frame.groupby(partitions.to_numpy(), sort=False, dropna=False):
        out = fn(part, params)
        if fn.partitioned:
            out = out.reset_index(drop=True)
            out[str(partitions.name)] = pd.Series([key] * len(out), dtype=partitions.dtype)
        else:
            out.index = part.index
        pieces.append(out)
    result = pd.concat(pieces) if pieces else fn(frame, params)
    # Rows of a row-wise table function come back in input order.
    return result.reset_index(drop=True) if fn.partitioned else result.sort_index()


def _check_partitioning(fn: ModelFunction, partition_column: str | None) -> None:
    if partition_column is not None and fn.function_type == "FUNCTION":
        raise InvalidArgumentError(
            "partition_column is not supported for FUNCTION type methods. Only TABLE_FUNCTION type methods "
            "support partitioning."
        )


def run_locally(
    loaded: LoadedModel,
    info: ModelFunctionInfo,
    X: Any,
    *,
    params: dict[str, Any] | None,
    strict: bool,
    partition_column: str | None = None,
) -> pd.DataFrame | DataFrame:
    from runbatch.snowpark.dataframe import DataFrame, LocalRows

    fn = loaded.function(info["target_method"])
    _check_partitioning(fn, partition_column)
    signature = fn.signature
    if isinstance(X, DataFrame):
        table = X._arrow()
        frame = table.to_pandas()
        columns = list(frame.columns)
        pcol = _partition_name(columns, partition_column)
        data = {}
        for feature in signature.inputs:
            matches = [c for c in columns if c == feature.name] or [
                c for c in columns if c.upper() == feature.name.upper()
            ]
            if not matches:
                raise InvalidArgumentError(
                    f"Data Validation Error: feature {feature.name} does not exist in data. Available columns are "
                    f"{columns}."
                )
            data[feature.name] = frame[matches[0]]
        validate_params(params, signature.params)
        partitions = frame[pcol] if pcol is not None else None
        outputs = _call(fn, pd.DataFrame(data), resolve_params(params, signature.params), partitions)
        if fn.partitioned:
            # Input columns do not pass through a partitioned function; the partition column does.
            arrays = [a for _, a in fn.output_arrays(outputs)]
            names = [f.name for f in signature.outputs]
            if pcol is not None:
                arrays.append(pa.array(outputs[pcol], type=table.schema.field(pcol).type))
                names.append(pcol)
            return DataFrame(X._session, LocalRows(pa.Table.from_arrays(arrays, names=names)))
        overwritten = {f.name.upper() for f in signature.outputs}
        keep = [n for n in table.column_names if n.upper() not in overwritten]
        arrays = [table.column(n) for n in keep] + [a for _, a in fn.output_arrays(outputs)]
        names = keep + [f.name for f in signature.outputs]
        return DataFrame(X._session, LocalRows(pa.Table.from_arrays(arrays, names=names)))
    raw = convert_local_data_to_df(X)
    pcol = _partition_name([str(c) for c in raw.columns], partition_column)
    partitions = raw[pcol] if pcol is not None else None
    frame = rename_pandas_df(raw, signature.inputs)
    validate_pandas_df(frame, signature.inputs)
    validate_params(params, signature.params)
    outputs = _call(fn, frame, resolve_params(params, signature.params), partitions)
    for feature in signature.outputs:
        if isinstance(feature, FeatureSpec) and not feature.shape:
            try:
                outputs[feature.name] = outputs[feature.name].astype(feature.as_dtype())
            except (TypeError, ValueError):
                pass
    _ = strict  # range checks of strict_input_validation are not applied to local runs
    return outputs.reset_index(drop=True)
