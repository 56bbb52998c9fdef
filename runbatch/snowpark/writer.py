"""Mirror of ``snowflake.snowpark.DataFrameWriter``: ``df.write.mode(...).save_as_table(name)``, and
files on a stage: ``df.write.parquet(path)`` / ``csv`` / ``json`` / ``copy_into_location`` run
``COPY INTO @stage/path FROM (<the DataFrame's query>)`` on the control plane, which streams the
rows into files there (``data_0_0_0.snappy.parquet``, ...) without passing them through the client."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pyarrow.parquet as pq

from runbatch.errors import InvalidArgumentError, UnsupportedError
from runbatch.snowpark.file_format import WRITER_ALIASES, canonical, options_sql, value_sql
from runbatch.snowpark.row import Row

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
        self._options: dict[str, Any] = {}
        self._format: str | None = None

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

    # -- files on a stage (COPY INTO <location>) --------------------------------------------------
    def option(self, key: str, value: Any) -> DataFrameWriter:
        """A format type option (``field_delimiter``, ``compression``, ...) or a copy option (``overwrite``)."""
        self._options[canonical(key, WRITER_ALIASES)] = value
        return self

    def options(self, configs: dict[str, Any] | None = None, **kwargs: Any) -> DataFrameWriter:
        if configs and kwargs:
            raise InvalidArgumentError(
                "Cannot set options with both a dictionary and keyword arguments. Please use one or the other."
            )
        for key, value in (configs or kwargs).items():
            self.option(key, value)
        return self

    def format(self, file_format_name: str) -> DataFrameWriter:
        kind = file_format_name.strip().lower()
        if kind not in ("csv", "json", "parquet"):
            raise InvalidArgumentError(
                f"Unsupported file format. Expected file formats: ['csv', 'json', 'parquet'], got '{file_format_name}'"
            )
        self._format = kind
        return self

    def copy_into_location(
        self,
        location: str,
        *,
        partition_by: Any = None,
        file_format_name: str | None = None,
        file_format_type: str | None = None,
        format_type_options: dict[str, Any] | None = None,
        header: bool = False,
        statement_params: dict[str, str] | None = None,
        block: bool = True,
        **copy_options: Any,
    ) -> list[Row]:
        """Unload the DataFrame into files at ``location``; returns one Row (rows_unloaded, input_bytes, output_bytes)."""
        if partition_by is not None:
            raise UnsupportedError("copy_into_location(partition_by=...) is not supported by runbatch.")
        if not block:
            raise UnsupportedError("copy_into_location(block=False) is not supported; it runs to completion.")
        fmt: dict[str, Any] = {}
        copy: dict[str, Any] = {}
        for key, value in self._options.items():
            (copy if key in _COPY_OPTIONS else fmt)[key] = value
        fmt.update({canonical(k, WRITER_ALIASES): v for k, v in (format_type_options or {}).items()})
        copy.update({k.upper(): v for k, v in copy_options.items()})
        if file_format_name is not None:
            if file_format_type is not None or fmt:
                raise InvalidArgumentError(
                    "Give file_format_name or file_format_type (with format_type_options), not both."
                )
            file_format = f"FORMAT_NAME = {value_sql(file_format_name)}"
        else:
            file_format = options_sql({"TYPE": (file_format_type or "CSV").upper(), **fmt})
        if header:
            copy["HEADER"] = True
        session = self._dataframe._session
        target = session._conn.stage_path(location)
        where = target.as_dir() if location.rstrip().endswith("/") or not target.path else str(target)
        text = (
            f"COPY INTO {where} FROM ({self._dataframe._source_sql()}) FILE_FORMAT = ({file_format})"
            + "".join(f" {key} = {value_sql(value)}" for key, value in copy.items())
        )
        result = session._conn.sql(text)
        return [Row._with_fields(result.columns, row) for row in result.rows]

    def save(
        self,
        location: str,
        *,
        partition_by: Any = None,
        format_type_options: dict[str, Any] | None = None,
        header: bool = False,
        statement_params: dict[str, str] | None = None,
        block: bool = True,
        **copy_options: Any,
    ) -> list[Row]:
        """Files of the format set with ``format()``."""
        if self._format is None:
            raise InvalidArgumentError(
                "File format type is not specified. Call `format` before calling `save`."
            )
        return self.copy_into_location(
            location,
            partition_by=partition_by,
            file_format_type=self._format,
            format_type_options=format_type_options,
            header=header,
            block=block,
            **copy_options,
        )

    def csv(
        self,
        location: str,
        *,
        partition_by: Any = None,
        format_type_options: dict[str, Any] | None = None,
        header: bool = False,
        statement_params: dict[str, str] | None = None,
        block: bool = True,
        **copy_options: Any,
    ) -> list[Row]:
        """CSV files (gzip-compressed unless COMPRESSION says otherwise, as in Snowflake)."""
        return self.copy_into_location(
            location,
            partition_by=partition_by,
            file_format_type="CSV",
            format_type_options=format_type_options,
            header=header,
            block=block,
            **copy_options,
        )

    def json(
        self,
        location: str,
        *,
        partition_by: Any = None,
        format_type_options: dict[str, Any] | None = None,
        header: bool = False,
        statement_params: dict[str, str] | None = None,
        block: bool = True,
        **copy_options: Any,
    ) -> list[Row]:
        """Newline-delimited JSON: each row as an object (a single semi-structured column as it is)."""
        return self.copy_into_location(
            location,
            partition_by=partition_by,
            file_format_type="JSON",
            format_type_options=format_type_options,
            header=header,
            block=block,
            **copy_options,
        )

    def parquet(
        self,
        location: str,
        *,
        partition_by: Any = None,
        format_type_options: dict[str, Any] | None = None,
        header: bool = False,
        statement_params: dict[str, str] | None = None,
        block: bool = True,
        **copy_options: Any,
    ) -> list[Row]:
        """Parquet files; columns keep their names only with ``header=True`` (Snowflake's _COL_0, ... otherwise)."""
        return self.copy_into_location(
            location,
            partition_by=partition_by,
            file_format_type="PARQUET",
            format_type_options=format_type_options,
            header=header,
            block=block,
            **copy_options,
        )


# COPY INTO <location>'s copy options; any other writer option is a format type option.
_COPY_OPTIONS = frozenset(
    {"OVERWRITE", "SINGLE", "MAX_FILE_SIZE", "INCLUDE_QUERY_ID", "DETAILED_OUTPUT", "HEADER"}
)
