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
    from runbatch.inference.function import LoadedModel
    from runbatch.ml.model._model_version import ModelFunctionInfo
    from runbatch.snowpark.dataframe import DataFrame

__all__ = ["run_locally"]


def run_locally(
    loaded: LoadedModel, info: ModelFunctionInfo, X: Any, *, params: dict[str, Any] | None, strict: bool
) -> pd.DataFrame | DataFrame:
    from runbatch.snowpark.dataframe import DataFrame, LocalRows

    fn = loaded.function(info["target_method"])
    signature = fn.signature
    if isinstance(X, DataFrame):
        table = X._arrow()
        frame = table.to_pandas()
        columns = list(frame.columns)
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
        outputs = fn(pd.DataFrame(data), resolve_params(params, signature.params))
        overwritten = {f.name.upper() for f in signature.outputs}
        keep = [n for n in table.column_names if n.upper() not in overwritten]
        arrays = [table.column(n) for n in keep] + [a for _, a in fn.output_arrays(outputs)]
        names = keep + [f.name for f in signature.outputs]
        return DataFrame(X._session, LocalRows(pa.Table.from_arrays(arrays, names=names)))
    frame = rename_pandas_df(convert_local_data_to_df(X), signature.inputs)
    validate_pandas_df(frame, signature.inputs)
    validate_params(params, signature.params)
    outputs = fn(frame, resolve_params(params, signature.params))
    for feature in signature.outputs:
        if isinstance(feature, FeatureSpec) and not feature.shape:
            try:
                outputs[feature.name] = outputs[feature.name].astype(feature.as_dtype())
            except (TypeError, ValueError):
                pass
    _ = strict  # range checks of strict_input_validation are not applied to local runs
    return outputs.reset_index(drop=True)
