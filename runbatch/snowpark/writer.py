"""Mirror of ``snowflake.snowpark.DataFrameWriter``: ``df.write.mode(...).save_as_table(name)``."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from runbatch.errors import InvalidArgumentError

if TYPE_CHECKING:
    from runbatch.snowpark.dataframe import DataFrame

__all__ = ["DataFrameWriter"]

# Snowpark's save modes, with the aliases its DataFrameWriter.mode accepts.
_MODES = {
    "append": "append",
    "overwrite": "overwrite",
    "errorifexists": "errorifexists",
    "error": "errorifexists",
    "ignore": "ignore",
}


def _save_mode(value: str) -> str:
    mode = _MODES.get(str(value).lower())
    if mode is None:
        raise InvalidArgumentError(
            f"Unsupported save mode {value!r}; use 'append', 'overwrite', 'errorifexists' or 'ignore'."
        )
    return mode


class DataFrameWriter:
    """``df.write``: store a DataFrame as a table (Parquet in the control plane's storage)."""

    def __init__(self, dataframe: DataFrame) -> None:
        self._dataframe = dataframe
        self._mode = "errorifexists"

    def mode(self, save_mode: str) -> DataFrameWriter:
        self._mode = _save_mode(save_mode)
        return self

    def save_as_table(
        self,
        table_name: str | Iterable[str],
        *,
        mode: str | None = None,
        column_order: str = "index",
        create_temp_table: bool = False,
        table_type: str = "",
        **_: Any,
    ) -> None:
        """Create, append to, overwrite or leave the table, per ``mode`` (default: the writer's mode)."""
        if create_temp_table or table_type.lower() in ("temp", "temporary", "transient"):
            raise InvalidArgumentError(
                "Temporary and transient tables are not supported; save a permanent table and drop it when done."
            )
        if column_order.lower() != "index":
            raise InvalidArgumentError("Only column_order='index' is supported.")
        save_mode = _save_mode(mode) if mode is not None else self._mode
        session = self._dataframe._session
        database, schema, table = session._conn.table_name(table_name)
        buffer = io.BytesIO()
        pq.write_table(self._dataframe._arrow(), buffer)
        session._conn.client.save_table(database, schema, table, buffer.getvalue(), mode=save_mode)

    saveAsTable = save_as_table
