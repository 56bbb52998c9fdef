"""Mirror of ``snowflake.snowpark.DataFrame``.

A DataFrame is a lazy plan: rows held by the client (``create_dataframe``), Parquet files
on a stage (``session.read.parquet``), or a statement's result (``session.sql``,
``session.table``; queries run on the control plane and stream back as Arrow). Nothing
runs until an action (``collect``, ``to_pandas``, ``count``, ``show``).

Operations (``select``, ``filter``, ``join``, ...) compile to one Snowflake SELECT that nests
the source's own query, so they run on the control plane like ``session.sql``: a table or
stage read is referenced by name, local rows are sent inline as a typed VALUES clause
(``runbatch.snowpark.values``), and a SHOW/LIST result is composed from its rows.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runbatch.errors import InvalidArgumentError, UnsupportedError
from runbatch.identifiers import format_identifier, resolve_identifier
from runbatch.snowpark.column import Column, quote_name, sql_literal, sql_type
from runbatch.snowpark.file_format import READER_ALIASES, canonical, options_sql
from runbatch.snowpark.row import Row
from runbatch.snowpark.types import (
    ArrayType,
    DataType,
    MapType,
    StringType,
    StructField,
    StructType,
    VariantType,
    arrow_to_type,
)
from runbatch.snowpark.values import values_query
from runbatch.snowpark.writer import DataFrameWriter
from runbatch.stage.paths import StagePath, compile_pattern, pattern_matches
from runbatch.wire.resources import is_query

if TYPE_CHECKING:
    from runbatch.snowpark.session import Session

__all__ = ["DataFrame", "DataFrameReader", "RelationalGroupedDataFrame"]


@dataclass(frozen=True)
class LocalRows:
    table: pa.Table


@dataclass(frozen=True)
class StageFiles:
    location: StagePath
    pattern: str | None


@dataclass(frozen=True)
class SqlStatement:
    text: str


Plan = LocalRows | StageFiles | SqlStatement
ColumnOrName = Column | str

_aliases = itertools.count(1)


def _is_data_file(relative: str) -> bool:
    return not any(part.startswith(("_", ".")) for part in relative.split("/"))


class DataFrame:
    def __init__(self, session: Session, plan: Plan) -> None:
        self._session = session
        self._plan = plan
        self._sql_result: pa.Table | None = None
        # The name this DataFrame's rows go by inside the queries built on it, so that df["A"]
        # can say which side of a join it means.
        self._alias = f"__DF_{next(_aliases)}"

    # -- execution --------------------------------------------------------------------------------
    def _stage_files(self) -> list[str]:
        assert isinstance(self._plan, StageFiles)
        loc = self._plan.location
        client = self._session._conn.client
        rows = client.list_stage_files(
            loc.database, loc.schema, loc.stage, path=loc.path + "/" if loc.path else ""
        )
        regex = compile_pattern(self._plan.pattern)
        paths = []
        for row in rows:
            relative_to_stage = row.path
            relative = relative_to_stage[len(loc.path) + 1 :] if loc.path else relative_to_stage
            if not _is_data_file(relative):
                continue
            if regex is not None and not pattern_matches(
                regex, list_name=row.name, stage_relative=relative_to_stage
            ):
                continue
            paths.append(relative_to_stage)
        return paths

    def _read_stage_file(self, relative_to_stage: str) -> pa.Table:
        assert isinstance(self._plan, StageFiles)
        loc = self._plan.location
        data = b"".join(
            self._session._conn.client.download_stage_file(
                loc.database, loc.schema, loc.stage, relative_to_stage
            )
        )
        return pq.read_table(io.BytesIO(data))

    def _is_query(self) -> bool:
        return isinstance(self._plan, SqlStatement) and is_query(self._plan.text)

    def _arrow(self) -> pa.Table:
        plan = self._plan
        if isinstance(plan, LocalRows):
            return plan.table
        if isinstance(plan, StageFiles):
            tables = [self._read_stage_file(p) for p in self._stage_files()]
            if not tables:
                raise InvalidArgumentError(f"No Parquet files found at {plan.location.as_dir()}.")
            return pa.concat_tables(tables, promote_options="default")
        if is_query(plan.text):
            # A query runs again on every action, as in Snowpark, so it sees the tables as they are.
            return self._session._conn.query(plan.text).read_all()
        if self._sql_result is None:
            # Other statements run once: a DataFrame over CREATE or DROP must not repeat it.
            result = self._session._conn.sql(plan.text)
            columns = {c: pa.array([r[i] for r in result.rows]) for i, c in enumerate(result.columns)}
            self._sql_result = pa.table(columns) if columns else pa.table({})
        return self._sql_result

    def _source_sql(self) -> str:
        """A SELECT over this DataFrame's rows, for operations to build on."""
        plan = self._plan
        if isinstance(plan, LocalRows):
            return values_query(plan.table)
        if isinstance(plan, StageFiles):
            pattern = f" (PATTERN => {sql_literal(plan.pattern)})" if plan.pattern else ""
            return f"SELECT * FROM {plan.location.as_dir()}{pattern}"
        if is_query(plan.text):
            # The text goes inside parentheses: a trailing semicolon or line comment would break them.
            return plan.text.strip().rstrip(";").rstrip() + "\n"
        # SHOW, LIST, ... results are composed from their rows (Snowpark uses RESULT_SCAN for this).
        return values_query(self._arrow())

    def _from(self) -> str:
        return f"({self._source_sql()}) AS {quote_name(self._alias)}"

    def _query(self, sql: str) -> DataFrame:
        return DataFrame(self._session, SqlStatement(sql))

    def collect(self) -> list[Row]:
        table = self._arrow()
        names = table.column_names
        return [Row._with_fields(names, [r[n] for n in names]) for r in table.to_pylist()]

    def to_pandas(self) -> pd.DataFrame:
        frame: pd.DataFrame = self._arrow().to_pandas()
        return frame

    toPandas = to_pandas

    def to_pandas_batches(self) -> Iterator[pd.DataFrame]:
        """The rows as pandas frames, one per Arrow record batch as the query streams them."""
        plan = self._plan
        if isinstance(plan, StageFiles):
            for path in self._stage_files():
                yield self._read_stage_file(path).to_pandas()
            return
        if self._is_query():
            assert isinstance(plan, SqlStatement)
            for batch in self._session._conn.query(plan.text):
                yield batch.to_pandas()
            return
        for batch in self._arrow().to_batches():
            yield batch.to_pandas()

    def count(self) -> int:
        """The number of rows; for a query, counted on the control plane (COUNT(*))."""
        plan = self._plan
        if isinstance(plan, StageFiles):
            return sum(self._read_stage_file(p).num_rows for p in self._stage_files())
        if self._is_query():
            result = self._session._conn.query(f'SELECT COUNT(*) AS "COUNT" FROM {self._from()}').read_all()
            return int(result.column(0)[0].as_py())
        return int(self._arrow().num_rows)

    @property
    def write(self) -> DataFrameWriter:
        return DataFrameWriter(self)

    # -- transformations --------------------------------------------------------------------------
    def select(self, *cols: ColumnOrName | Iterable[ColumnOrName]) -> DataFrame:
        columns = _columns(cols)
        if not columns:
            raise InvalidArgumentError("select() needs at least one column.")
        return self._query(f"SELECT {', '.join(c._select_sql() for c in columns)} FROM {self._from()}")

    def filter(self, expr: Column | str) -> DataFrame:
        """Rows where ``expr`` (a Column, or SQL text as in Snowpark) is true."""
        condition = expr if isinstance(expr, str) else expr._sql
        return self._query(f"SELECT * FROM {self._from()} WHERE {condition}")

    where = filter

    def with_column(self, col_name: str, col: Column) -> DataFrame:
        """Add ``col`` as ``col_name`` at the end, replacing a column of that name (as Snowpark does)."""
        name = resolve_identifier(col_name)
        kept = [quote_name(n) for n in self._names() if n != name]
        select = ", ".join([*kept, f"{col._sql} AS {quote_name(name)}"])
        return self._query(f"SELECT {select} FROM {self._from()}")

    withColumn = with_column

    def with_column_renamed(self, existing: ColumnOrName, new: str) -> DataFrame:
        old = _name_of(existing)
        names = self._names()
        if old not in names:
            raise InvalidArgumentError(f"The DataFrame has no column {quote_name(old)}; it has {names}.")
        renamed = resolve_identifier(new)
        select = [f"{quote_name(n)} AS {quote_name(renamed)}" if n == old else quote_name(n) for n in names]
        return self._query(f"SELECT {', '.join(select)} FROM {self._from()}")

    withColumnRenamed = with_column_renamed

    def drop(self, *cols: ColumnOrName | Iterable[ColumnOrName]) -> DataFrame:
        dropped = {_name_of(c) for c in _flatten(cols)}
        kept = [n for n in self._names() if n not in dropped]
        if not kept:
            raise InvalidArgumentError("Cannot drop all columns of a DataFrame.")
        return self._query(f"SELECT {', '.join(quote_name(n) for n in kept)} FROM {self._from()}")

    def limit(self, n: int, offset: int = 0) -> DataFrame:
        """The first ``n`` rows (stage files are read only until ``n`` rows are in hand)."""
        plan = self._plan
        if self._is_query():
            tail = f" OFFSET {int(offset)}" if offset else ""
            return self._query(f"SELECT * FROM {self._from()} LIMIT {int(n)}{tail}")
        if isinstance(plan, StageFiles):
            tables, rows = [], 0
            for path in self._stage_files():
                if rows >= n + offset:
                    break
                table = self._read_stage_file(path)
                tables.append(table)
                rows += table.num_rows
            head = pa.concat_tables(tables).slice(offset, n) if tables else pa.table({})
        else:
            head = self._arrow().slice(offset, n)
        return DataFrame(self._session, LocalRows(head))

    def sort(
        self, *cols: ColumnOrName | Iterable[ColumnOrName], ascending: bool | list[bool] | None = None
    ) -> DataFrame:
        columns = _columns(cols)
        if not columns:
            raise InvalidArgumentError("sort() needs at least one column.")
        if ascending is not None:
            flags = ascending if isinstance(ascending, list) else [ascending] * len(columns)
            if len(flags) != len(columns):
                raise InvalidArgumentError("ascending must have one value per sort column.")
            columns = [c.asc() if up else c.desc() for c, up in zip(columns, flags, strict=True)]
        keys = ", ".join(c._order_sql() for c in columns)
        return self._query(f"SELECT * FROM {self._from()} ORDER BY {keys}")

    order_by = sort
    orderBy = sort

    def group_by(self, *cols: ColumnOrName | Iterable[ColumnOrName]) -> RelationalGroupedDataFrame:
        return RelationalGroupedDataFrame(self, _columns(cols))

    groupBy = group_by

    def agg(self, *exprs: Any) -> DataFrame:
        """Aggregates over all rows (``group_by()`` with no columns)."""
        return self.group_by().agg(*exprs)

    def distinct(self) -> DataFrame:
        return self._query(f"SELECT DISTINCT * FROM {self._from()}")

    def union_all(self, other: DataFrame) -> DataFrame:
        """The rows of both, matched by position (as Snowflake's UNION ALL)."""
        return self._query(f"SELECT * FROM {self._from()} UNION ALL SELECT * FROM {other._from()}")

    unionAll = union_all

    def union(self, other: DataFrame) -> DataFrame:
        return self._query(f"SELECT * FROM {self._from()} UNION SELECT * FROM {other._from()}")

    def join(
        self,
        right: DataFrame,
        on: ColumnOrName | Iterable[str] | None = None,
        how: str | None = None,
        *,
        lsuffix: str = "",
        rsuffix: str = "",
        join_type: str | None = None,
    ) -> DataFrame:
        """Join on column names (``USING``: each appears once) or on a condition over ``df["COL"]``."""
        kind = _JOIN_TYPES.get((how or join_type or "inner").lower().replace("_", ""))
        if kind is None:
            raise InvalidArgumentError(
                f"Unsupported join type {how or join_type!r}; use one of {sorted(set(_JOIN_TYPES))}."
            )
        if right._alias == self._alias:
            raise UnsupportedError(
                "Joining a DataFrame with itself is not supported; join it with a copy of its query."
            )
        using = (
            [on]
            if isinstance(on, str)
            else (list(on) if on is not None and not isinstance(on, Column) else None)
        )
        if using is not None:
            keys = [resolve_identifier(k) for k in using]
            condition = " AND ".join(
                f"{quote_name(self._alias)}.{quote_name(k)} = {quote_name(right._alias)}.{quote_name(k)}"
                for k in keys
            )
        else:
            keys, condition = [], on._sql if isinstance(on, Column) else ""
        if kind in ("SEMI", "ANTI"):
            if not condition:
                raise InvalidArgumentError(f"A {kind.lower()} join needs a join condition (on=...).")
            negate = "NOT " if kind == "ANTI" else ""
            return self._query(
                f"SELECT * FROM {self._from()} WHERE {negate}EXISTS (SELECT 1 FROM {right._from()} WHERE {condition})"
            )
        if not condition and kind != "CROSS":
            kind = "CROSS"  # Snowpark joins every row with every row when no condition is given
        # Keys named in ``on`` are compared with ON and selected once below (what USING means).
        join = (
            f"CROSS JOIN {right._from()}"
            if kind == "CROSS"
            else f"{kind} JOIN {right._from()} ON {condition}"
        )
        left_names, right_names = self._names(), right._names()
        clash = (set(left_names) & set(right_names)) - set(keys)
        if clash and not (lsuffix or rsuffix):
            raise InvalidArgumentError(
                f"Both sides of the join have the columns {sorted(clash)}: join on them by name "
                "(on=[...]), rename them, or pass lsuffix=/rsuffix=."
            )
        if keys and kind == "FULL OUTER":
            # Each key once, from whichever side has it (what USING gives in Snowflake).
            key_select = [
                f"COALESCE({quote_name(self._alias)}.{quote_name(k)}, {quote_name(right._alias)}.{quote_name(k)}) "
                f"AS {quote_name(k)}"
                for k in keys
            ]
        else:
            side = right._alias if kind == "RIGHT OUTER" else self._alias
            key_select = [f"{quote_name(side)}.{quote_name(k)}" for k in keys]
        select = [
            *key_select,
            *_side_columns(self._alias, [n for n in left_names if n not in keys], clash, lsuffix),
            *_side_columns(right._alias, [n for n in right_names if n not in keys], clash, rsuffix),
        ]
        return self._query(f"SELECT {', '.join(select)} FROM {self._from()} {join}")

    def __getitem__(self, name: str) -> Column:
        """``df["A"]``: the column of this DataFrame, to tell join sides apart."""
        return self.col(name)

    def col(self, col_name: str) -> Column:
        resolved = resolve_identifier(col_name)
        return Column(f"{quote_name(self._alias)}.{quote_name(resolved)}", resolved)

    # -- metadata ---------------------------------------------------------------------------------
    def _arrow_schema(self) -> pa.Schema:
        plan = self._plan
        if isinstance(plan, LocalRows):
            return plan.table.schema
        if self._is_query() or isinstance(plan, StageFiles):
            # Only the result's shape: the control plane plans the query and sends no rows.
            return self._session._conn.query(f"SELECT * FROM {self._from()} LIMIT 0").schema
        return self._arrow().schema

    def _names(self) -> list[str]:
        return list(self._arrow_schema().names)

    @property
    def schema(self) -> StructType:
        return StructType(
            [StructField(_quoted(f.name), arrow_to_type(f.type), f.nullable) for f in self._arrow_schema()]
        )

    @property
    def columns(self) -> list[str]:
        return [format_identifier(name) for name in self._names()]

    def show(self, n: int = 10, max_width: int = 50) -> None:
        print(self._show_string(n, max_width))  # noqa: T201 - show() prints, as Snowpark's does

    def _show_string(self, n: int, max_width: int) -> str:
        table = self.limit(n)._arrow()
        headers = [f'"{name}"' for name in table.column_names]
        body = [[_cell(v, max_width) for v in row.values()] for row in table.to_pylist()]
        # Snowpark pads every column by two spaces beyond its widest value.
        widths = [max([len(h)] + [len(r[i]) for r in body]) + 2 for i, h in enumerate(headers)]
        line = "-" * (sum(widths) + len(widths) + 1)
        fmt = "|" + "|".join(f"{{:<{w}}}" for w in widths) + "|"
        return "\n".join([line, fmt.format(*headers), line, *(fmt.format(*r) for r in body), line, ""])


class RelationalGroupedDataFrame:
    """``df.group_by(...)``: ``agg`` (Columns, ``(name, function)`` pairs or a dict) and ``count``."""

    def __init__(self, dataframe: DataFrame, keys: list[Column]) -> None:
        self._dataframe = dataframe
        self._keys = keys

    def agg(self, *exprs: Any) -> DataFrame:
        aggregates: list[Column] = []
        for expr in _flatten(exprs):
            if isinstance(expr, dict):
                aggregates += [_aggregate(name, fn) for name, fn in expr.items()]
            elif isinstance(expr, tuple):
                aggregates.append(_aggregate(*expr))
            elif isinstance(expr, Column):
                aggregates.append(expr)
            else:
                raise InvalidArgumentError(
                    f"agg() takes Columns, (column, function) pairs or a dict, not {expr!r}."
                )
        select = ", ".join(c._select_sql() for c in [*self._keys, *aggregates])
        group = f" GROUP BY {', '.join(k._sql for k in self._keys)}" if self._keys else ""
        return self._dataframe._query(f"SELECT {select} FROM {self._dataframe._from()}{group}")

    def count(self) -> DataFrame:
        return self.agg(Column("COUNT(*)").alias("COUNT"))


_JOIN_TYPES = {
    "inner": "INNER",
    "left": "LEFT OUTER",
    "leftouter": "LEFT OUTER",
    "right": "RIGHT OUTER",
    "rightouter": "RIGHT OUTER",
    "outer": "FULL OUTER",
    "full": "FULL OUTER",
    "fullouter": "FULL OUTER",
    "cross": "CROSS",
    "semi": "SEMI",
    "leftsemi": "SEMI",
    "anti": "ANTI",
    "leftanti": "ANTI",
}

_AGGREGATES = {"sum": "SUM", "avg": "AVG", "mean": "AVG", "min": "MIN", "max": "MAX", "count": "COUNT"}


def _aggregate(name: ColumnOrName, function: str) -> Column:
    sql = _AGGREGATES.get(function.lower())
    if sql is None:
        raise InvalidArgumentError(f"Unknown aggregate {function!r}; use one of {sorted(_AGGREGATES)}.")
    target = name if isinstance(name, Column) else Column._of(name)
    return Column(f"{sql}({target._sql})")


def _side_columns(alias: str, names: list[str], clash: set[str], suffix: str) -> list[str]:
    return [
        f"{quote_name(alias)}.{quote_name(n)}" + (f" AS {quote_name(n + suffix)}" if n in clash else "")
        for n in names
    ]


def _flatten(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list):
            out += item
        else:
            out.append(item)
    return out


def _columns(items: Iterable[Any]) -> list[Column]:
    return [c if isinstance(c, Column) else Column._of(c) for c in _flatten(items)]


def _name_of(item: ColumnOrName) -> str:
    if isinstance(item, Column):
        if item._name is None:
            raise InvalidArgumentError(f"{item!r} is an expression, not a column name.")
        return item._name
    return resolve_identifier(item)


def _quoted(name: str) -> str:
    return format_identifier(name)


def _cell(value: Any, max_width: int) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= max_width else text[: max_width - 3] + "..."


class DataFrameReader:
    """``session.read``: files on a stage, as Snowpark reads them.

    Parquet is read by column name (``infer_schema`` False gives one column ``$1``, each row as
    an object). CSV needs ``schema(StructType)`` (its fields are ``$1``, ``$2``, ... cast to the
    schema's types) unless ``INFER_SCHEMA`` is set. JSON gives one column ``$1`` per value
    (``INFER_SCHEMA`` makes a column per field). Format options (``field_delimiter``,
    ``skip_header``, ``null_if``, ... and Snowpark's aliases such as ``sep`` and ``header``), or
    ``format_name`` for a named file format, say how the files are read on the control plane.
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._options: dict[str, Any] = {}
        self._schema: StructType | None = None
        self._metadata: list[str] = []
        self._format: str | None = None

    def option(self, key: str, value: Any) -> DataFrameReader:
        self._options[key.lower()] = value
        return self

    def options(self, configs: dict[str, Any] | None = None, **kwargs: Any) -> DataFrameReader:
        for key, value in {**(configs or {}), **kwargs}.items():
            self.option(key, value)
        return self

    def schema(self, schema: StructType) -> DataFrameReader:
        """The columns of CSV files: names and types, matched to the fields by position."""
        self._schema = schema
        return self

    def with_metadata(self, *metadata_cols: ColumnOrName | Iterable[ColumnOrName]) -> DataFrameReader:
        """Metadata columns (``"METADATA$FILENAME"``, ``"METADATA$FILE_ROW_NUMBER"``, ...) to read first."""
        self._metadata = [c._select_sql() if isinstance(c, Column) else c for c in _flatten(metadata_cols)]
        return self

    def format(self, format: str) -> DataFrameReader:
        kind = format.strip().lower()
        if kind not in ("csv", "json", "parquet"):
            raise InvalidArgumentError(
                f"Invalid format {format!r}. Supported formats are ['csv', 'json', 'parquet']."
            )
        self._format = kind
        return self

    def load(self, path: str) -> DataFrame:
        if self._format is None:
            raise InvalidArgumentError(
                "Please specify the format of the file(s) to load using the format() method."
            )
        return {"csv": self.csv, "json": self.json, "parquet": self.parquet}[self._format](path)

    def _settings(self) -> tuple[dict[str, Any], str | None, str | None, bool | None]:
        """(format options, PATTERN, FORMAT_NAME, INFER_SCHEMA) from the options set."""
        fmt: dict[str, Any] = {}
        pattern = name = None
        infer: bool | None = None
        for key, value in self._options.items():
            option = canonical(key, READER_ALIASES)
            if option == "PATTERN":
                pattern = str(value)
            elif option == "FORMAT_NAME":
                name = str(value)
            elif option == "INFER_SCHEMA":
                infer = bool(value)
            elif option in _COPY_OPTIONS:
                raise UnsupportedError(
                    f"The copy option {option} is not supported by session.read; runbatch reads the files "
                    "with a query (COPY INTO <table> is not supported)."
                )
            else:
                fmt[option] = value
        return fmt, pattern, name, infer

    def _files(self, path: str, kind: str, select: str, infer: bool) -> DataFrame:
        fmt, pattern, name, _ = self._settings()
        location = self._session._conn.stage_path(path)
        where = location.as_dir() if path.rstrip().endswith("/") else str(location)
        if name is not None:
            file_format = name
        else:
            inline = {"TYPE": kind, **fmt, **({"INFER_SCHEMA": True} if infer else {})}
            file_format = f"({options_sql(inline)})"
        args = f"FILE_FORMAT => {sql_literal(file_format)}"
        if pattern is not None:
            args += f", PATTERN => {sql_literal(pattern)}"
        columns = ", ".join([*self._metadata, select])
        return DataFrame(self._session, SqlStatement(f"SELECT {columns} FROM {where} ({args})"))

    def csv(self, path: str) -> DataFrame:
        """CSV files: the schema's columns, or (INFER_SCHEMA) columns and types read from the files."""
        infer = self._settings()[3]
        if self._schema is not None:
            select = ", ".join(
                f"${i + 1}::{_file_type(f.datatype)} AS {quote_name(f.column_identifier)}"
                for i, f in enumerate(self._schema.fields)
            )
            return self._files(path, "CSV", select, infer=False)
        if not infer:
            raise InvalidArgumentError(
                "No schema specified in DataFrameReader.schema(). Please specify the schema or set "
                'session.read.options({"infer_schema":True})'
            )
        return self._files(path, "CSV", "*", infer=True)

    def json(self, path: str) -> DataFrame:
        """JSON files (one value per line): one column ``$1``, or with INFER_SCHEMA a column per field."""
        infer = bool(self._settings()[3])
        return self._files(path, "JSON", "*", infer=infer)

    def parquet(self, path: str) -> DataFrame:
        fmt, pattern, name, infer = self._settings()
        if infer is False:
            return self._files(path, "PARQUET", "$1", infer=False)
        location = self._session._conn.stage_path(path)
        if self._metadata or name is not None or fmt or self._is_file(location, path):
            return self._files(path, "PARQUET", "*", infer=False)
        return DataFrame(self._session, StageFiles(location, pattern))

    def _is_file(self, location: StagePath, path: str) -> bool:
        """Whether ``path`` names one file (``@stage/names.parquet``) rather than a folder."""
        if path.rstrip().endswith("/") or not location.path:
            return False
        rows = self._session._conn.client.list_stage_files(
            location.database, location.schema, location.stage, path=location.path
        )
        return any(r.path == location.path for r in rows)


# Snowpark's copy options (COPY INTO <table>), which its reader runs for these; runbatch reads with a query.
_COPY_OPTIONS = frozenset(
    {
        "ON_ERROR",
        "SIZE_LIMIT",
        "PURGE",
        "RETURN_FAILED_ONLY",
        "MATCH_BY_COLUMN_NAME",
        "ENFORCE_LENGTH",
        "TRUNCATECOLUMNS",
        "FORCE",
        "LOAD_UNCERTAIN_FILES",
    }
)


def _file_type(datatype: DataType) -> str:
    """The SQL type a CSV field is cast to (semi-structured types stay VARIANT)."""
    if isinstance(datatype, ArrayType | MapType | VariantType | StructType):
        return "VARIANT"
    if isinstance(datatype, StringType):
        return "VARCHAR"
    return sql_type(datatype)
