"""COPY INTO @stage/path FROM (query) | table: unload a query's rows into files on a stage.

The query runs as ``session.sql`` queries do (DuckDB over Arrow datasets, locked away from
files and the network); its record batches stream into Parquet, CSV or JSON files that are
written through the stage's storage, so a result never sits whole in memory. A file is
closed once it reaches MAX_FILE_SIZE and the next one begins. Files are named as Snowflake
names them: ``data_0_0_0.snappy.parquet``, ``data_0_0_1.csv.gz``, ... (or ``<prefix>_0_0_0...``
when the location ends in a name rather than ``/``; exactly that name with SINGLE = TRUE).

Planning (``plan_unload``) needs the metadata database; running (``Unload.run``) does not, so
the route releases its database session before the rows flow.
"""

from __future__ import annotations

import bz2
import re
import uuid
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.orm import Session
from sqlglot import exp

from runbatch.errors import InvalidArgumentError, OutputExistsError, UnsupportedError
from runbatch.stage.paths import StagePath, parse_stage_path
from runbatch.stage.storage import Storage
from runbatch.wire.resources import SqlResult
from server.file_formats import service as file_formats
from server.file_formats.options import FileFormat, RawOptions, RawValue, file_format
from server.secrets import SecretBox
from server.sql.query import parse_one, translate_tree
from server.sql.results import ByteSink, Sources, open_sources
from server.stages import service as stages
from server.stages.service import ResolvedStage

__all__ = ["Unload", "is_copy", "plan_unload"]

_COPY = re.compile(r"^(?:\s|--[^\n]*\n?|/\*.*?\*/)*COPY\b", re.IGNORECASE | re.DOTALL)
_DEFAULT_MAX_FILE_SIZE = 16 * 1024 * 1024  # Snowflake's default MAX_FILE_SIZE
_FAILED = "COPY INTO failed"
_COPY_OPTIONS = ("HEADER", "OVERWRITE", "SINGLE", "MAX_FILE_SIZE", "DETAILED_OUTPUT", "INCLUDE_QUERY_ID")
_SUFFIX = {"GZIP": ".gz", "BZ2": ".bz2", "NONE": ""}
_NESTED = re.compile(r"^(STRUCT|MAP|UNION)\(|\[\d*\]$")


def is_copy(sql: str) -> bool:
    """Whether ``sql`` is a COPY statement, which POST /sql runs here rather than as a control statement."""
    return _COPY.match(sql) is not None


@dataclass(frozen=True)
class _Options:
    header: bool = False
    overwrite: bool = False
    single: bool = False
    max_file_size: int = _DEFAULT_MAX_FILE_SIZE
    detailed: bool = False
    include_query_id: bool = False


@dataclass
class _Written:
    name: str  # relative to the location's folder
    rows: int = 0
    size: int = 0


@dataclass
class Unload:
    """A planned COPY INTO <location>: the query's sources are open, the target is resolved."""

    sources: Sources
    fmt: FileFormat
    target: ResolvedStage
    location: StagePath
    folder: str  # the stage-relative folder the files go to ('' is the stage root)
    base: str  # the file name (SINGLE) or the file name prefix
    options: _Options
    database: str | None
    schema: str | None
    input_bytes: int = 0
    written: list[_Written] = field(default_factory=list)

    def run(self) -> SqlResult:
        """Write the files; returns Snowflake's result (rows_unloaded, input_bytes, output_bytes)."""
        try:
            relation = self.sources.relation(self.sources.query.sql)
            columns, types = list(relation.columns), [str(t) for t in relation.types]
            if self.fmt.type == "PARQUET":
                self._write(
                    self.sources.reader(self.sources.query.sql, failed=_FAILED), self._parquet(columns)
                )
            elif self.fmt.type == "JSON":
                self._write(
                    self.sources.reader(_json_sql(self.sources.query.sql, columns, types), failed=_FAILED),
                    self._lines(None),
                )
            else:
                sql, header = _csv_sql(self.sources.query.sql, columns, types, self.fmt)
                self._write(
                    self.sources.reader(sql, failed=_FAILED),
                    self._lines(header if self.options.header else None),
                )
        finally:
            self.sources.close()
        if self.options.detailed:
            return SqlResult(
                columns=["FILE_NAME", "FILE_SIZE", "ROW_COUNT"],
                rows=[[w.name, w.size, w.rows] for w in self.written],
                database=self.database,
                schema=self.schema,
            )
        return SqlResult(
            columns=["rows_unloaded", "input_bytes", "output_bytes"],
            rows=[[sum(w.rows for w in self.written), self.input_bytes, sum(w.size for w in self.written)]],
            database=self.database,
            schema=self.schema,
        )

    # -- files ------------------------------------------------------------------------------------
    def _compression(self, name: str) -> str:
        chosen = str(self.fmt.get("COMPRESSION"))
        if chosen != "AUTO":
            return chosen
        if self.options.single:
            # A single file keeps the name it was given; it is compressed when that name says so.
            return next((c for c, s in _SUFFIX.items() if s and name.endswith(s)), "NONE")
        return "GZIP"

    def _name(self, index: int, query_id: str) -> str:
        if self.options.single:
            return self.base
        if self.fmt.given("FILE_EXTENSION") and self.fmt.get("FILE_EXTENSION"):
            ext = "." + str(self.fmt.get("FILE_EXTENSION")).lstrip(".")
        elif self.fmt.type == "PARQUET":
            ext = ".parquet" if self.fmt.get("COMPRESSION") == "NONE" else ".snappy.parquet"
        else:
            ext = "." + self.fmt.type.lower() + _SUFFIX[self._compression("")]
        middle = f"_{query_id}" if query_id else ""
        return f"{self.base}{middle}_0_0_{index}{ext}"

    def _write(self, reader: pa.RecordBatchReader, encoder: Callable[[ByteSink, str], _Encoder]) -> None:
        """Stream ``reader`` into files of about MAX_FILE_SIZE each (one file with SINGLE = TRUE)."""
        batches = self._rows(reader)
        pending = next(batches, None)
        query_id = uuid.uuid4().hex if self.options.include_query_id else ""
        while pending is not None:
            written = _Written(self._name(len(self.written), query_id))
            relative = f"{self.folder}/{written.name}" if self.folder else written.name

            def chunks(written: _Written = written) -> Iterator[bytes]:
                nonlocal pending
                sink = ByteSink()
                out = encoder(sink, written.name)
                produced = 0
                while pending is not None:
                    self.input_bytes += out.write(pending)
                    written.rows += pending.num_rows
                    pending = next(batches, None)
                    data = sink.take()
                    produced += len(data)
                    yield data
                    if not self.options.single and produced >= self.options.max_file_size:
                        break
                out.close()
                yield sink.take()

            written.size = self.target.storage.write_stream(self.target.key_for(relative), chunks())
            self.written.append(written)

    def _rows(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        """The query's batches; a failure while they are computed (a malformed file, a cast that
        fails) is the statement's error, while failures writing the files stay what they are."""
        source = iter(reader)
        while True:
            try:
                batch = next(source)
            except StopIteration:
                return
            except (OSError, pa.ArrowException, duckdb.Error) as exc:
                raise InvalidArgumentError(f"{_FAILED}: {self.sources.readable(str(exc))}") from None
            yield batch

    def _parquet(self, columns: list[str]) -> Callable[[ByteSink, str], _Encoder]:
        compression = "none" if self.fmt.get("COMPRESSION") == "NONE" else "snappy"
        # Without HEADER = TRUE Snowflake names Parquet columns by position.
        names = columns if self.options.header else [f"_COL_{i}" for i in range(len(columns))]
        return lambda sink, _name: _ParquetEncoder(sink, names, compression)

    def _lines(self, header: str | None) -> Callable[[ByteSink, str], _Encoder]:
        newline = str(self.fmt.get("RECORD_DELIMITER")) if self.fmt.type == "CSV" else "\n"
        return lambda sink, name: _LinesEncoder(sink, self._compression(name), header, newline)


class _Encoder(Protocol):
    def write(self, batch: pa.RecordBatch) -> int:
        """Encode ``batch``; returns its size before compression (what input_bytes counts)."""

    def close(self) -> None: ...


class _ParquetEncoder:
    def __init__(self, sink: ByteSink, names: list[str], compression: str) -> None:
        self._sink = sink
        self._names = names
        self._compression = compression
        self._writer: pq.ParquetWriter | None = None

    def write(self, batch: pa.RecordBatch) -> int:
        renamed = pa.RecordBatch.from_arrays(batch.columns, names=self._names)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self._sink, renamed.schema, compression=self._compression)
        self._writer.write_batch(renamed)
        return int(batch.nbytes)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class _Compressor(Protocol):
    def compress(self, data: bytes, /) -> bytes: ...

    def flush(self) -> bytes: ...


class _Plain:
    def compress(self, data: bytes, /) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


def _compressor(compression: str) -> _Compressor:
    if compression == "GZIP":
        # Level 1: several times the throughput of zlib's default on CSV text, for files ~10% larger.
        return zlib.compressobj(1, zlib.DEFLATED, 31)
    if compression == "BZ2":
        return bz2.BZ2Compressor()
    return _Plain()


class _LinesEncoder:
    """One text line per row (DuckDB formats each line), compressed as it is written."""

    def __init__(self, sink: ByteSink, compression: str, header: str | None, newline: str) -> None:
        self._sink = sink
        self._compressor = _compressor(compression)
        self._newline = newline
        self._header = (header + newline).encode() if header is not None else b""
        sink.write(self._compressor.compress(self._header))

    def write(self, batch: pa.RecordBatch) -> int:
        data = (self._newline.join(batch.column(0).to_pylist()) + self._newline).encode()
        self._sink.write(self._compressor.compress(data))
        counted, self._header = len(self._header) + len(data), b""
        return counted

    def close(self) -> None:
        self._sink.write(self._compressor.flush())


# -- SQL that formats rows ------------------------------------------------------------------------
def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _json_sql(sql: str, columns: list[str], types: list[str]) -> str:
    """One JSON text per row: a single semi-structured column as it is, else an object of all columns."""
    if len(columns) == 1 and (types[0] == "JSON" or _NESTED.search(types[0])):
        value = f"to_json(q.{_quote(columns[0])})"
    else:
        value = "to_json(struct_pack(" + ", ".join(f"{_quote(c)} := q.{_quote(c)}" for c in columns) + "))"
    return f"SELECT CAST({value} AS VARCHAR) AS line FROM ({sql}) AS q"


def _csv_sql(sql: str, columns: list[str], types: list[str], fmt: FileFormat) -> tuple[str, str]:
    """The query's rows as CSV lines, and the header line, per the format's delimiter, enclosure and NULL_IF."""
    delimiter = fmt.get("FIELD_DELIMITER")
    if delimiter is None:
        raise UnsupportedError("FIELD_DELIMITER = NONE cannot be used to unload; choose a delimiter.")
    enclose = fmt.get("FIELD_OPTIONALLY_ENCLOSED_BY")
    escape = fmt.get("ESCAPE_UNENCLOSED_FIELD")
    null_if = list(fmt.get("NULL_IF")) if fmt.given("NULL_IF") else []
    # SQL NULL is written as the first NULL_IF value when one is given, else as an empty field.
    null = _literal(null_if[0] if null_if else "")

    def text(value: str) -> str:
        if enclose is not None:
            q = _literal(enclose)
            return f"{q} || replace({value}, {q}, {_literal(enclose * 2)}) || {q}"
        if escape is not None:
            # Snowflake's ESCAPE_UNENCLOSED_FIELD: the escape character, the delimiter and line
            # breaks inside an unenclosed field are preceded by the escape character.
            for special in (escape, delimiter, "\n", "\r"):
                value = f"replace({value}, {_literal(special)}, {_literal(escape + special)})"
        return value

    fields = []
    for name, kind in zip(columns, types, strict=True):
        column = f"q.{_quote(name)}"
        if _NESTED.search(kind):
            value = text(f"CAST(to_json({column}) AS VARCHAR)")
        elif kind in ("VARCHAR", "JSON"):
            value = text(f"CAST({column} AS VARCHAR)")
        else:
            value = f"CAST({column} AS VARCHAR)"
        fields.append(f"COALESCE({value}, {null})")
    line = f" || {_literal(delimiter)} || ".join(fields)
    header = delimiter.join(
        (enclose + c.replace(enclose, enclose * 2) + enclose) if enclose else c for c in columns
    )
    return f"SELECT {line} AS line FROM ({sql}) AS q", header


# -- planning -------------------------------------------------------------------------------------
def plan_unload(
    session: Session,
    storage: Storage,
    secrets: SecretBox,
    sql: str,
    *,
    database: str | None,
    schema: str | None,
) -> Unload:
    """Parse COPY INTO <location>, resolve its format, target and sources; nothing is written yet."""
    tree = parse_one(sql)
    if not isinstance(tree, exp.Copy):
        raise InvalidArgumentError(
            "SQL compilation error: expected COPY INTO @stage/path FROM (query) | table."
        )
    target_text = _stage_text(tree.this)
    if target_text is None:
        raise UnsupportedError(
            "COPY INTO <table> (loading staged files into a table) is not supported; read the files with "
            "session.read / SELECT ... FROM @stage (FILE_FORMAT => ...) and save them with df.write.save_as_table."
        )
    credentials = tree.args.get("credentials")
    if credentials is not None and any(v for v in credentials.args.values()):
        raise UnsupportedError(
            "CREDENTIALS, STORAGE_INTEGRATION and ENCRYPTION are not supported; unload to a stage."
        )
    files = tree.args.get("files") or []
    if len(files) != 1:
        raise InvalidArgumentError(
            "SQL compilation error: COPY INTO @stage needs FROM (query) or FROM table."
        )
    query_tree = _query_of(files[0])
    raw_format: RawOptions | None = None
    format_name: str | None = None
    copy: dict[str, str] = {}
    for param in tree.args.get("params") or []:
        key = param.this.name.upper()
        if key == "FILE_FORMAT":
            raw_format = {p.this.name.upper(): _raw(p.args.get("value")) for p in param.expressions}
            name = raw_format.pop("FORMAT_NAME", None)
            if name is not None:
                if raw_format:
                    raise InvalidArgumentError(
                        "SQL compilation error: FILE_FORMAT takes FORMAT_NAME = '<name>' or TYPE = ... options, "
                        "not both."
                    )
                format_name = _single(name, "FORMAT_NAME")
        elif key == "PARTITION BY":
            raise UnsupportedError("COPY INTO ... PARTITION BY is not supported by runbatch.")
        elif key in _COPY_OPTIONS:
            copy[key] = _single(_raw(param.args.get("expression")), key)
        else:
            raise InvalidArgumentError(
                f"SQL compilation error: unknown or unsupported COPY INTO <location> option {key}; supported: "
                f"FILE_FORMAT, {', '.join(_COPY_OPTIONS)}."
            )
    if format_name is not None:
        fmt = file_formats.resolve_file_format(session, format_name, database=database, schema=schema)
    else:
        fmt = file_format(raw_format or {"TYPE": "CSV"})
    if fmt.get("COMPRESSION") == "ZSTD":
        # Arrow's zstd streams write a frame per flush, which its own reader cannot read back.
        raise UnsupportedError("COMPRESSION = ZSTD is not supported for unloading; use GZIP, BZ2 or NONE.")
    options = _copy_options(copy)
    location = parse_stage_path(target_text, database=database, schema=schema)
    target = stages.resolve_stage_path(session, storage, location, secrets)
    as_folder = target_text.rstrip("'").endswith("/") or not location.path
    if as_folder:
        folder, base = location.path, "data"
    else:
        folder, _, base = location.path.rpartition("/")
    unload = Unload(
        open_sources(session, storage, secrets, translate_tree(query_tree), database=database, schema=schema),
        fmt,
        target,
        location,
        folder,
        base,
        options,
        database,
        schema,
    )
    try:
        _check_destination(unload)
    except BaseException:
        unload.sources.close()
        raise
    return unload


def _check_destination(unload: Unload) -> None:
    if unload.options.overwrite or unload.options.include_query_id:
        return
    relative = f"{unload.folder}/{unload.base}" if unload.folder else unload.base
    key = unload.target.key_for(relative)
    taken = (
        unload.target.storage.exists(key)
        if unload.options.single
        else bool(unload.target.storage.list(key + "_"))
    )
    if taken:
        shown = (
            str(unload.location)
            if unload.options.single
            else StagePath(
                unload.location.database, unload.location.schema, unload.location.stage, unload.folder
            ).as_dir()
        )
        raise OutputExistsError(
            f"Files already existing at the unload destination: {shown}. Use overwrite option to force unloading."
        )


def _stage_text(node: Any) -> str | None:
    this = node.this if isinstance(node, exp.Table) else node
    if isinstance(this, exp.Var | exp.Literal) and str(this.this).startswith("@"):
        return str(this.this)
    return None


def _query_of(source: exp.Expression) -> exp.Query:
    if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Query):
        return source.this
    if isinstance(source, exp.Table) and _stage_text(source) is None:
        return exp.select("*").from_(source.copy())
    raise UnsupportedError(
        "COPY INTO @stage unloads FROM (SELECT ...) or FROM a table; to copy stage files, SELECT from them."
    )


def _raw(value: Any) -> RawValue:
    """A parsed option value as the text (or list of texts) the file format options take."""
    if isinstance(value, exp.Tuple | exp.Paren):
        items = value.expressions if isinstance(value, exp.Tuple) else [value.this]
        return [str(_raw(v)) for v in items]
    if isinstance(value, exp.Boolean):
        return "TRUE" if value.this else "FALSE"
    if isinstance(value, exp.Table):
        return ".".join(p.sql(dialect="snowflake") for p in value.parts)
    if isinstance(value, exp.Literal | exp.Var | exp.Identifier):
        return str(value.this)
    if isinstance(value, exp.Neg) and isinstance(value.this, exp.Literal):
        return f"-{value.this.this}"
    if value is None:
        raise InvalidArgumentError("SQL compilation error: an option is missing its value.")
    return str(value.sql(dialect="snowflake"))


def _single(value: RawValue, name: str) -> str:
    if isinstance(value, list):
        raise InvalidArgumentError(f"SQL compilation error: {name} takes one value, not a list.")
    return value


def _copy_options(copy: dict[str, str]) -> _Options:
    def flag(name: str) -> bool:
        text = copy.get(name, "FALSE").upper()
        if text not in ("TRUE", "FALSE"):
            raise InvalidArgumentError(f"SQL compilation error: {name} must be TRUE or FALSE, not {text!r}.")
        return text == "TRUE"

    size_text = copy.get("MAX_FILE_SIZE", str(_DEFAULT_MAX_FILE_SIZE))
    if not size_text.isdigit() or int(size_text) == 0:
        raise InvalidArgumentError(
            f"SQL compilation error: MAX_FILE_SIZE must be a positive number of bytes, not {size_text!r}."
        )
    return _Options(
        header=flag("HEADER"),
        overwrite=flag("OVERWRITE"),
        single=flag("SINGLE"),
        max_file_size=int(size_text),
        detailed=flag("DETAILED_OUTPUT"),
        include_query_id=flag("INCLUDE_QUERY_ID"),
    )
