"""Run a translated query with DuckDB over Arrow datasets and stream the result as Arrow IPC.

Sources are resolved against the metadata database while the request's session is open; the
rows then flow from storage through DuckDB to the client one record batch at a time, so a
result never sits whole in the server's memory. DuckDB gets only the datasets: external
access is switched off (and locked) before the user's SQL runs, so a query cannot read the
server's disk (``read_csv('/etc/passwd')``) or reach storage with credentials of its own.
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import complete_name, qualified
from runbatch.stage.paths import parse_stage_path
from runbatch.stage.storage import Storage
from server.secrets import SecretBox
from server.sql.query import Source, StageSource, translate
from server.stages import service as stages
from server.tables import service as tables

__all__ = ["ARROW_STREAM", "QueryResult", "open_query"]

ARROW_STREAM = "application/vnd.apache.arrow.stream"
_BATCH_ROWS = 65_536
_THREADS = 2


class QueryResult:
    """An open DuckDB result: ``chunks()`` streams it once as Arrow IPC bytes, then closes it."""

    def __init__(self, connection: duckdb.DuckDBPyConnection, reader: pa.RecordBatchReader) -> None:
        self._connection = connection
        self.reader = reader

    def chunks(self) -> Iterator[bytes]:
        sink = _Sink()
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


class _Sink(io.RawIOBase):
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
    query = translate(sql)
    names = {s.alias: _dataset(session, storage, secrets, s, database, schema) for s in query.sources}
    connection = duckdb.connect(config={"threads": _THREADS})
    try:
        shown: dict[str, str] = {}
        for alias, (dataset, label) in names.items():
            connection.register(alias, dataset)
            shown[alias] = label
        connection.execute("SET enable_external_access = false")
        connection.execute("SET lock_configuration = true")
        reader = connection.sql(query.sql).to_arrow_reader(_BATCH_ROWS)
    except duckdb.Error as exc:
        connection.close()
        raise InvalidArgumentError(f"SQL compilation error: {_readable(str(exc), shown)}") from None
    except BaseException:
        connection.close()
        raise
    return QueryResult(connection, reader)


def _readable(message: str, shown: dict[str, str]) -> str:
    for alias, label in shown.items():
        message = message.replace(f'"{alias}"', label).replace(alias, label)
    return message


def _dataset(
    session: Session,
    storage: Storage,
    secrets: SecretBox,
    source: Source,
    database: str | None,
    schema: str | None,
) -> tuple[ds.Dataset, str]:
    if isinstance(source, StageSource):
        path = parse_stage_path(source.stage, database=database, schema=schema)
        resolved = stages.resolve_stage_path(session, storage, path, secrets)
        rows = stages.list_files(
            resolved, prefix_is_dir=source.stage.endswith("/"), pattern=source.pattern, with_md5=False
        )
        keys = [resolved.key_for(r.path) for r in rows if _is_data_file(r.path, path.path)]
        label, store = path.as_dir(), resolved.storage
        if not keys:
            raise InvalidArgumentError(
                f"No Parquet files found at {label}"
                + (f" matching {source.pattern!r}." if source.pattern else ".")
            )
    else:
        db, sch, name = complete_name(source.parts, database, schema)
        if db is None or sch is None:
            raise InvalidArgumentError(
                f"Cannot resolve table {qualified(*source.parts)}: there is no current "
                f"{'database' if db is None else 'schema'}. Qualify the name (DB.SCHEMA.TABLE) or run USE DATABASE / "
                "USE SCHEMA first."
            )
        row = tables.get_table(session, db, sch, name)
        keys = [e.key for e in storage.list(row.location + "/")]
        label, store = qualified(db, sch, name), storage
    try:
        return store.parquet_dataset(keys), label
    except (pa.ArrowInvalid, OSError) as exc:
        raise InvalidArgumentError(f"Cannot read {label} as Parquet: {exc}") from None


def _is_data_file(relative_to_stage: str, base: str) -> bool:
    # Job outputs keep _SUCCESS, _manifest.json and _temporary/ next to their Parquet files.
    rest = (
        relative_to_stage[len(base) :].lstrip("/")
        if base and relative_to_stage.startswith(base)
        else relative_to_stage
    )
    return not any(part.startswith(("_", ".")) for part in rest.split("/"))
