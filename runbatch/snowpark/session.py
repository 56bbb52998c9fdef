"""Mirror of ``snowflake.snowpark.Session``: ``Session.builder.configs({...}).create()``.

With a ``url`` (or RUNBATCH_API_URL) every call goes to that server over REST; without one
the control plane starts in this process on SQLite and local stages under ``home``.
"""

from __future__ import annotations

import glob
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import qualified, resolve_identifier
from runbatch.snowpark._connection import Connection, connect
from runbatch.snowpark.dataframe import DataFrame, DataFrameReader, LocalRows, SqlStatement
from runbatch.snowpark.row import Row
from runbatch.snowpark.types import StructType, type_to_arrow
from runbatch.stage.paths import compile_pattern, pattern_matches

__all__ = ["FileOperation", "GetResult", "PutResult", "Session", "get_active_session"]

_active: list[Session] = []
_active_lock = threading.Lock()


def get_active_session() -> Session:
    with _active_lock:
        if not _active:
            raise InvalidArgumentError("No active session: create one with Session.builder.create().")
        return _active[-1]


class _Builder:
    def __init__(self) -> None:
        self._options: dict[str, Any] = {}

    def config(self, key: str, value: Any) -> _Builder:
        self._options[key] = value
        return self

    def configs(self, options: dict[str, Any]) -> _Builder:
        self._options.update(options)
        return self

    def create(self) -> Session:
        return Session(connect(self._options))

    def getOrCreate(self) -> Session:  # noqa: N802 - Snowpark's name
        with _active_lock:
            if _active:
                return _active[-1]
        return self.create()


class _BuilderDescriptor:
    """A fresh builder on every ``Session.builder`` access, so options never leak between sessions."""

    def __get__(self, obj: object, owner: type) -> _Builder:
        return _Builder()


@dataclass(frozen=True)
class PutResult:
    source: str
    target: str
    source_size: int
    target_size: int
    source_compression: str
    target_compression: str
    status: str
    message: str


@dataclass(frozen=True)
class GetResult:
    file: str
    size: int
    status: str
    message: str


class FileOperation:
    """``session.file``: copy files between the local machine and a stage."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def put(
        self,
        local_file_name: str,
        stage_location: str,
        *,
        parallel: int = 4,
        auto_compress: bool = True,
        source_compression: str = "AUTO_DETECT",
        overwrite: bool = False,
    ) -> list[PutResult]:
        """Upload files (glob patterns allowed). Files are stored as given: auto_compress is not applied."""
        target = self._session._conn.stage_path(stage_location)
        sources = sorted(glob.glob(os.path.expanduser(local_file_name)))
        if not sources:
            raise FileNotFoundError(f"The file {local_file_name} does not exist.")
        client = self._session._conn.client
        existing = {
            r.name.split("/", 1)[1]
            for r in client.list_stage_files(
                target.database, target.schema, target.stage, path=target.path + "/" if target.path else ""
            )
        }
        results = []
        for source in sources:
            name = os.path.basename(source)
            rel = f"{target.path}/{name}" if target.path else name
            size = os.path.getsize(source)
            if rel in existing and not overwrite:
                results.append(PutResult(name, name, size, size, "NONE", "NONE", "SKIPPED", ""))
                continue
            with open(source, "rb") as f:
                client.upload_stage_file(
                    target.database, target.schema, target.stage, rel, iter(lambda: f.read(1 << 20), b"")
                )
            results.append(PutResult(name, name, size, size, "NONE", "NONE", "UPLOADED", ""))
        return results

    def get(
        self, stage_location: str, target_directory: str, *, parallel: int = 10, pattern: str | None = None
    ) -> list[GetResult]:
        """Download every file under ``stage_location`` into ``target_directory``."""
        source = self._session._conn.stage_path(stage_location)
        client = self._session._conn.client
        regex = compile_pattern(pattern)
        prefix = source.path + "/" if source.path and stage_location.endswith("/") else source.path
        os.makedirs(target_directory, exist_ok=True)
        results = []
        for row in client.list_stage_files(source.database, source.schema, source.stage, path=prefix):
            rel = row.path
            if regex is not None and not pattern_matches(regex, list_name=row.name, stage_relative=rel):
                continue
            local_rel = (
                rel[len(source.path) :].lstrip("/")
                if source.path and rel.startswith(source.path + "/")
                else os.path.basename(rel)
            )
            dest = Path(target_directory) / local_rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as f:
                for chunk in client.download_stage_file(source.database, source.schema, source.stage, rel):
                    f.write(chunk)
            results.append(GetResult(str(dest), row.size, "DOWNLOADED", ""))
        return results


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Session:
    builder = _BuilderDescriptor()

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.file = FileOperation(self)
        with _active_lock:
            _active.append(self)

    # -- namespace --------------------------------------------------------------------------------
    def use_database(self, database: str) -> None:
        self._conn.sql(f"USE DATABASE {database}")

    def use_schema(self, schema: str) -> None:
        self._conn.sql(f"USE SCHEMA {schema}")

    def get_current_database(self) -> str | None:
        """The current database as a quoted identifier (``'"ML"'``), as Snowpark returns it."""
        return _quote(self._conn.database) if self._conn.database else None

    def get_current_schema(self) -> str | None:
        return _quote(self._conn.schema) if self._conn.schema else None

    def get_fully_qualified_current_schema(self) -> str:
        return f"{self.get_current_database()}.{self.get_current_schema()}"

    def get_current_warehouse(self) -> str | None:
        """runbatch has no warehouses; JobSpec.warehouse is accepted and ignored."""
        return None

    def get_current_role(self) -> str:
        return '"ADMIN"'

    # -- data -------------------------------------------------------------------------------------
    def sql(self, query: str, params: Any = None) -> DataFrame:
        """A statement, run when the result is collected (as in Snowpark)."""
        if params is not None:
            raise InvalidArgumentError("Bind parameters in session.sql are not supported; inline the values.")
        return DataFrame(self, SqlStatement(query))

    def table(self, name: str | list[str] | tuple[str, ...]) -> DataFrame:
        """A table saved with ``save_as_table``; read when an action runs."""
        database, schema, table = self._conn.table_name(name)
        return DataFrame(self, SqlStatement(f"SELECT * FROM {qualified(database, schema, table)}"))

    @property
    def read(self) -> DataFrameReader:
        return DataFrameReader(self)

    def create_dataframe(
        self, data: Any, schema: StructType | list[str] | tuple[str, ...] | None = None
    ) -> DataFrame:
        """From a pandas DataFrame (names kept) or from rows (unquoted schema names become upper case)."""
        if isinstance(data, pd.DataFrame):
            table = pa.Table.from_pandas(data, preserve_index=False)
            return DataFrame(self, LocalRows(table))
        if isinstance(data, pa.Table):
            return DataFrame(self, LocalRows(data))
        rows = [r if isinstance(r, list | tuple) and not isinstance(r, str) else (r,) for r in data]
        if rows and isinstance(rows[0], Row) and rows[0]._fields and schema is None:
            schema = list(rows[0]._fields)
        width = (
            len(rows[0])
            if rows
            else (len(schema.fields) if isinstance(schema, StructType) else len(schema or []))
        )
        if isinstance(schema, StructType):
            names = schema.names
            types: list[pa.DataType | None] = [type_to_arrow(f.datatype) for f in schema.fields]
        else:
            names = [resolve_identifier(n) for n in (schema or [f"_{i + 1}" for i in range(width)])]
            types = [None] * len(names)
        if any(len(r) != len(names) for r in rows):
            raise InvalidArgumentError(
                f"Every row must have {len(names)} values to match the schema {names}."
            )
        columns = [pa.array([r[i] for r in rows], type=types[i]) for i in range(len(names))]
        return DataFrame(self, LocalRows(pa.Table.from_arrays(columns, names=names)))

    createDataFrame = create_dataframe

    def close(self) -> None:
        with _active_lock:
            if self in _active:
                _active.remove(self)
        self._conn.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
