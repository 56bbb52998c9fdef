"""Run a translated query with DuckDB over Arrow datasets and stream the result as Arrow IPC.

Sources are resolved against the metadata database while the request's session is open; the
rows then flow from storage through DuckDB to the client one record batch at a time, so a
result never sits whole in the server's memory. DuckDB gets only the datasets: external
access is switched off (and locked) before the user's SQL runs, so a query cannot read the
server's disk (``read_csv('/etc/passwd')``) or reach storage with credentials of its own.
Stage files of every format (CSV, JSON, Parquet) are parsed by pyarrow, never by DuckDB
(``server.sql.stage_files``).
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterator

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import complete_name, qualified
from runbatch.stage.storage import Storage
from server.monitoring.functions import TABLE_FUNCTIONS, metric_table
from server.secrets import SecretBox
from server.spcs.functions import register_service_functions
from server.sql.query import VIRTUAL_PREFIX, FunctionSource, Query, StageSource, TableSource, translate
from server.sql.scans import bounded
from server.sql.stage_files import register_stage_files, stage_files
from server.tables import service as tables

__all__ = ["ARROW_STREAM", "ByteSink", "QueryResult", "Sources", "open_query", "open_sources"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
_BATCH_ROWS = 65_536
_THREADS = 2


class QueryResult:
    """An open DuckDB result: ``chunks()`` streams it once as Arrow IPC bytes, then closes it."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        reader: pa.RecordBatchReader,
        readable: Callable[[str], str] = str,
    ) -> None:
        self._connection = connection
        self.reader = reader
        self._readable = readable

    def prefetch(self) -> None:
        """Read the first batch now, so that a failure there (a malformed file, a cast that fails)
        is the request's error, not a stream cut short after the response has begun."""
        try:
            first = self.reader.read_next_batch()
        except StopIteration:
            return
        except (OSError, pa.ArrowException, duckdb.Error) as exc:
            self.close()
            raise InvalidArgumentError(f"The query failed: {self._readable(str(exc))}") from None
        self.reader = pa.RecordBatchReader.from_batches(
            self.reader.schema, itertools.chain([first], self.reader)
        )

    def chunks(self) -> Iterator[bytes]:
        sink = ByteSink()
        try:
            with pa.ipc.new_stream(sink, self.reader.schema) as writer:
                yield sink.take()
                for batch in self.reader:
                    writer.write_batch(batch)
                    yield sink.take()
            yield sink.take()
        finally:
            self.close()

    def close(self) -> None:
        self._connection.close()


class ByteSink(io.RawIOBase):
    """Collects what a writer writes; ``take`` hands it over and starts afresh."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buffer)
        self._buffer.clear()
        return out


def open_query(
    session: Session,
    storage: Storage,
    secrets: SecretBox,
    sql: str,
    *,
    database: str | None,
    schema: str | None,
) -> QueryResult:
    """Translate and start ``sql``; compile errors are raised here, before any byte is sent."""
    sources = open_sources(session, storage, secrets, translate(sql), database=database, schema=schema)
    return QueryResult(sources.connection, sources.reader(sources.query.sql), sources.readable)


class Sources:
    """A locked DuckDB connection in which every source of ``query`` is registered under its alias."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, query: Query, shown: dict[str, str]) -> None:
        self.connection = connection
        self.query = query
        self._shown = shown

    def relation(self, sql: str) -> duckdb.DuckDBPyRelation:
        """``sql`` planned (not run); a compile error closes the connection and names the sources as written."""
        try:
            return self.connection.sql(sql)
        except duckdb.Error as exc:
            self.close()
            raise InvalidArgumentError(f"SQL compilation error: {self.readable(str(exc))}") from None
        except BaseException:
            self.close()
            raise

    def reader(self, sql: str, *, failed: str = "The query failed") -> pa.RecordBatchReader:
        """``sql``'s rows; DuckDB starts computing them here, so a failure is ``failed: <why>``."""
        relation = self.relation(sql)
        try:
            return _named(relation.to_arrow_reader(_BATCH_ROWS))
        except duckdb.Error as exc:
            self.close()
            raise InvalidArgumentError(f"{failed}: {self.readable(str(exc))}") from None
        except BaseException:
            self.close()
            raise

    def readable(self, message: str) -> str:
        for alias, label in self._shown.items():
            message = message.replace(f'"{alias}"', label).replace(alias, label)
        return message.replace(VIRTUAL_PREFIX, "")

    def close(self) -> None:
        self.connection.close()


def _named(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """Unaliased expressions are named after their text by DuckDB: show ``$1``, not the reserved name."""
    names = reader.schema.names
    if not any(VIRTUAL_PREFIX in n for n in names):
        return reader
    renamed = [n.replace(VIRTUAL_PREFIX, "") for n in names]
    schema = pa.schema([f.with_name(n) for f, n in zip(reader.schema, renamed, strict=True)])
    batches = (pa.RecordBatch.from_arrays(b.columns, schema=schema) for b in reader)
    return pa.RecordBatchReader.from_batches(schema, batches)


def open_sources(
    session: Session,
    storage: Storage,
    secrets: SecretBox,
    query: Query,
    *,
    database: str | None,
    schema: str | None,
) -> Sources:
    """Resolve the sources while ``session`` is open and register them in a fresh, locked connection."""
    staged = {
        s.alias: stage_files(session, storage, secrets, s, database=database, schema=schema)
        for s in query.sources
        if isinstance(s, StageSource)
    }
    tabled = {
        s.alias: _table_dataset(session, storage, s, database, schema)
        for s in query.sources
        if isinstance(s, TableSource)
    }
    functions = {
        s.alias: _function_table(session, s, database, schema)
        for s in query.sources
        if isinstance(s, FunctionSource)
    }
    connection = duckdb.connect(config={"threads": _THREADS})
    try:
        shown: dict[str, str] = {}
        for alias, (result, label) in functions.items():
            connection.register(alias, result)
            shown[alias] = label
        for alias, files in staged.items():
            shown.update(register_stage_files(connection, alias, files, query.virtual))
        for alias, (dataset, label) in tabled.items():
            connection.register(alias, bounded(dataset))
            shown[alias] = label
        # Service functions the query calls become UDFs that send its rows to their service.
        register_service_functions(session, connection, query.sql, database, schema)
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        connection.close()
        raise InvalidArgumentError(f"SQL compilation error: {exc}") from None
    except BaseException:
        connection.close()
        raise
    return Sources(connection, query, shown)


def _table_dataset(
    session: Session, storage: Storage, source: TableSource, database: str | None, schema: str | None
) -> tuple[ds.Dataset, str]:
    db, sch, name = complete_name(source.parts, database, schema)
    if db is None or sch is None:
        raise InvalidArgumentError(
            f"Cannot resolve table {qualified(*source.parts)}: there is no current "
            f"{'database' if db is None else 'schema'}. Qualify the name (DB.SCHEMA.TABLE) or run USE DATABASE / "
            "USE SCHEMA first."
        )
    row = tables.get_table(session, db, sch, name)
    keys = [e.key for e in storage.list(row.location + "/")]
    label = qualified(db, sch, name)
    try:
        return storage.parquet_dataset(keys), label
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidArgumentError(f"Cannot read {label} as Parquet: {exc}") from None


def _function_table(
    session: Session, source: FunctionSource, database: str | None, schema: str | None
) -> tuple[pa.Table, str]:
    """A runbatch table function's rows; its arguments are evaluated by a locked DuckDB first, so
    they may be any constant expression (``DATEADD(day, -7, CURRENT_TIMESTAMP())``) and nothing else."""
    label = f"TABLE({source.name}(...))"
    if source.name not in TABLE_FUNCTIONS:
        raise InvalidArgumentError(f"SQL compilation error: Unknown table function {source.name}.")
    values: list[object] = []
    if source.args:
        connection = duckdb.connect(config={"threads": 1})
        try:
            # Through Arrow, not Python objects: DuckDB's TIMESTAMPTZ values need pytz otherwise.
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute("SET enable_external_access = false")
            connection.execute("SET lock_configuration = true")
            row = connection.sql("SELECT " + ", ".join(source.args)).to_arrow_table()
        except duckdb.Error as exc:
            raise InvalidArgumentError(f"SQL compilation error: arguments of {source.name}: {exc}") from None
        finally:
            connection.close()
        values = [row.column(i)[0].as_py() for i in range(row.num_columns)]
    return metric_table(session, source.name, values, database=database, schema=schema), label
