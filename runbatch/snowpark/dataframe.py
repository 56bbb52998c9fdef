"""Mirror of ``snowflake.snowpark.DataFrame`` for what batch inference needs.

A DataFrame is a lazy plan: rows held by the client (``create_dataframe``), Parquet files
on a stage (``session.read.parquet``), or a statement's result (``session.sql``,
``session.table``; queries run on the control plane and stream back as Arrow). Nothing
runs until an action (``collect``, ``to_pandas``, ``count``, ``show``).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import format_identifier
from runbatch.snowpark.row import Row
from runbatch.snowpark.types import StructField, StructType, arrow_to_type
from runbatch.snowpark.writer import DataFrameWriter
from runbatch.stage.paths import StagePath, compile_pattern, pattern_matches
from runbatch.wire.resources import is_query

if TYPE_CHECKING:
    from runbatch.snowpark.session import Session

__all__ = ["DataFrame", "DataFrameReader"]


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


def _is_data_file(relative: str) -> bool:
    return not any(part.startswith(("_", ".")) for part in relative.split("/"))


class DataFrame:
    def __init__(self, session: Session, plan: Plan) -> None:
        self._session = session
        self._plan = plan
        self._sql_result: pa.Table | None = None

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

    def _arrow(self) -> pa.Table:
        plan = self._plan
        if isinstance(plan, LocalRows):
            return plan.table
        if isinstance(plan, StageFiles):
            tables = [self._read_stage_file(p) for p in self._stage_files()]
            if not tables:
                raise InvalidArgumentError(f"No Parquet files found at {plan.location.as_dir()}.")
            return pa.concat_tables(tables, promote_options="default")
        if self._sql_result is None and is_query(plan.text):
            # The server streams the rows; an action needs them all, so they are gathered here.
            self._sql_result = self._session._conn.query(plan.text).read_all()
        if self._sql_result is None:
            result = self._session._conn.sql(plan.text)
            columns = {c: pa.array([r[i] for r in result.rows]) for i, c in enumerate(result.columns)}
            self._sql_result = pa.table(columns) if columns else pa.table({})
        return self._sql_result

    def collect(self) -> list[Row]:
        table = self._arrow()
        names = table.column_names
        return [Row._with_fields(names, [r[n] for n in names]) for r in table.to_pylist()]

    def to_pandas(self) -> pd.DataFrame:
        frame: pd.DataFrame = self._arrow().to_pandas()
        return frame

    toPandas = to_pandas

    def limit(self, n: int) -> DataFrame:
        """The first ``n`` rows (stage files are read only until ``n`` rows are in hand)."""
        plan = self._plan
        if isinstance(plan, StageFiles):
            tables, rows = [], 0
            for path in self._stage_files():
                if rows >= n:
                    break
                table = self._read_stage_file(path)
                tables.append(table)
                rows += table.num_rows
            head = pa.concat_tables(tables).slice(0, n) if tables else pa.table({})
        else:
            head = self._arrow().slice(0, n)
        return DataFrame(self._session, LocalRows(head))

    def count(self) -> int:
        plan = self._plan
        if isinstance(plan, StageFiles):
            return sum(self._read_stage_file(p).num_rows for p in self._stage_files())
        return int(self._arrow().num_rows)

    @property
    def write(self) -> DataFrameWriter:
        return DataFrameWriter(self)

    # -- metadata ---------------------------------------------------------------------------------
    @property
    def schema(self) -> StructType:
        table = self._arrow() if not isinstance(self._plan, LocalRows) else self._plan.table
        return StructType(
            [StructField(_quoted(f.name), arrow_to_type(f.type), f.nullable) for f in table.schema]
        )

    @property
    def columns(self) -> list[str]:
        return [format_identifier(name) for name in self._arrow().column_names]

    def show(self, n: int = 10, max_width: int = 50) -> None:
        print(self._show_string(n, max_width))  # noqa: T201 - show() prints, as Snowpark's does

    def _show_string(self, n: int, max_width: int) -> str:
        table = self._arrow().slice(0, n)
        headers = [f'"{name}"' for name in table.column_names]
        body = [[_cell(v, max_width) for v in row.values()] for row in table.to_pylist()]
        # Snowpark pads every column by two spaces beyond its widest value.
        widths = [max([len(h)] + [len(r[i]) for r in body]) + 2 for i, h in enumerate(headers)]
        line = "-" * (sum(widths) + len(widths) + 1)
        fmt = "|" + "|".join(f"{{:<{w}}}" for w in widths) + "|"
        return "\n".join([line, fmt.format(*headers), line, *(fmt.format(*r) for r in body), line, ""])


def _quoted(name: str) -> str:
    return format_identifier(name)


def _cell(value: Any, max_width: int) -> str:
    text = "NULL" if value is None else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= max_width else text[: max_width - 3] + "..."


class DataFrameReader:
    """``session.read``: Parquet files on a stage."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._options: dict[str, Any] = {}

    def option(self, key: str, value: Any) -> DataFrameReader:
        self._options[key.lower()] = value
        return self

    def options(self, configs: dict[str, Any] | None = None, **kwargs: Any) -> DataFrameReader:
        for key, value in {**(configs or {}), **kwargs}.items():
            self.option(key, value)
        return self

    def parquet(self, path: str) -> DataFrame:
        location = self._session._conn.stage_path(path)
        return DataFrame(self._session, StageFiles(location, self._options.get("pattern")))
