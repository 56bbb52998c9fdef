"""Stage files as a DuckDB relation: a pyarrow dataset per file format, and a view over it.

pyarrow reads the files (CSV and JSON through its CSV reader, Parquet natively) through the
stage's own filesystem, so DuckDB still never opens a file. The view gives the columns
Snowflake's staged-file queries have:

- CSV: ``$1 .. $n``, all text (``$k`` past the last field is NULL, as in Snowflake); with
  PARSE_HEADER the header's names, with INFER_SCHEMA (the SDK's reader option) typed columns.
- JSON: one column ``$1``, each line as a JSON value (Snowflake's VARIANT).
- Parquet: the file's columns, and ``$1``, the whole row as one JSON object.
- ``METADATA$FILENAME`` (the path from the stage root), ``METADATA$FILE_LAST_MODIFIED``,
  ``METADATA$FILE_ROW_NUMBER`` (from 1 in each file) and ``METADATA$START_SCAN_TIME``.

Positional and metadata columns are added only when the query names them. File names and
modification times ride along as partition values (constants per file, free to scan); row
numbers need the files read in order, so only a query that asks for them pays for that.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.json as pajson
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError
from runbatch.stage.paths import parse_stage_path
from runbatch.stage.storage import Storage
from server.file_formats import service as file_formats
from server.file_formats.options import FileFormat, file_format, read_options
from server.secrets import SecretBox
from server.sql.query import VIRTUAL_PREFIX, StageSource
from server.sql.scans import bounded
from server.sql.tokens import Cursor
from server.stages import service as stages

__all__ = ["StagedFiles", "register_stage_files", "resolve_file_format", "stage_files"]

_FILENAME = "METADATA$FILENAME"
_LAST_MODIFIED = "METADATA$FILE_LAST_MODIFIED"
_ROW_NUMBER = "METADATA$FILE_ROW_NUMBER"
_SCAN_TIME = "METADATA$START_SCAN_TIME"
_PARTITION_FIELDS = [pa.field(_FILENAME, pa.string()), pa.field(_LAST_MODIFIED, pa.timestamp("us"))]
_POSITIONAL = re.compile(r"\$([1-9][0-9]*)")
# A control character never appears raw in valid JSON, so splitting on it keeps each line whole.
_NO_DELIMITER = "\x01"
_ENCODINGS = {
    "UTF8": "utf8",
    "UTF-8": "utf8",
    "ISO-8859-1": "latin1",
    "LATIN1": "latin1",
    "WINDOWS1252": "cp1252",
    "UTF16": "utf-16",
    "UTF-16": "utf-16",
}


@dataclass(frozen=True)
class StagedFiles:
    """The files a stage reference names, and how to read them (``fmt`` None: Parquet, by name)."""

    label: str  # @DB.SCHEMA.STAGE/path/, for messages
    storage: Storage
    keys: list[str]
    names: list[str]  # path from the stage root: METADATA$FILENAME
    modified: list[datetime]
    fmt: FileFormat | None

    @property
    def type(self) -> str:
        return self.fmt.type if self.fmt is not None else "PARQUET"


def resolve_file_format(
    session: Session, text: str | None, *, database: str | None, schema: str | None
) -> FileFormat | None:
    """``FILE_FORMAT => '[db.][schema.]name'``, or the SDK's inline ``'( TYPE = CSV ... )'``."""
    if text is None:
        return None
    if text.lstrip().startswith("("):
        cur = Cursor(text)
        cur.expect_punct("(")
        raw = read_options(cur)
        cur.expect_punct(")")
        cur.end()
        return file_format(raw, inline=True)
    return file_formats.resolve_file_format(session, text, database=database, schema=schema)


def stage_files(
    session: Session,
    storage: Storage,
    secrets: SecretBox,
    source: StageSource,
    *,
    database: str | None,
    schema: str | None,
) -> StagedFiles:
    """List the data files of ``source`` (PATTERN applied) and resolve its file format."""
    fmt = resolve_file_format(session, source.file_format, database=database, schema=schema)
    path = parse_stage_path(source.stage, database=database, schema=schema)
    resolved = stages.resolve_stage_path(session, storage, path, secrets)
    rows = stages.list_files(
        resolved, prefix_is_dir=source.stage.endswith("/"), pattern=source.pattern, with_md5=False
    )
    rows = [r for r in rows if _is_data_file(r.path, path.path)]
    label = path.as_dir() if source.stage.endswith("/") or not path.path else str(path)
    if not rows:
        kind = "Parquet files" if fmt is None or fmt.type == "PARQUET" else f"{fmt.type} files"
        raise InvalidArgumentError(
            f"No {kind} found at {label}" + (f" matching {source.pattern!r}." if source.pattern else ".")
        )
    return StagedFiles(
        label,
        resolved.storage,
        [resolved.key_for(r.path) for r in rows],
        [r.path for r in rows],
        [parsedate_to_datetime(r.last_modified).astimezone(UTC).replace(tzinfo=None) for r in rows],
        fmt,
    )


def _is_data_file(relative_to_stage: str, base: str) -> bool:
    # Job outputs keep _SUCCESS, _manifest.json and _temporary/ next to their Parquet files.
    rest = (
        relative_to_stage[len(base) :].lstrip("/")
        if base and relative_to_stage.startswith(base)
        else relative_to_stage
    )
    return not any(part.startswith(("_", ".")) for part in rest.split("/"))


@dataclass(frozen=True)
class _Layout:
    """How one file format's dataset becomes the view: data columns and positional columns."""

    format: ds.FileFormat
    schema: pa.Schema  # the data columns as the files are read (partition fields come on top)
    visible: list[str]  # SELECT * of the view: SQL expressions with their names
    positional: Callable[[int], str | None]  # "$k" -> its SQL expression (None: no such column)


def register_stage_files(
    connection: duckdb.DuckDBPyConnection, alias: str, files: StagedFiles, virtual: frozenset[str]
) -> dict[str, str]:
    """Make ``alias`` name the files' rows in ``connection``.

    Returns what error messages should say instead of the names registered and the files' paths
    on the server: the stage location, and each file's path on the stage.
    """
    fs, found = files.storage.arrow_files(files.keys)
    paths = list(found)
    shown = dict(zip(paths, files.names, strict=True))
    try:
        if files.fmt is None and not virtual:
            # Parquet read by name: the dataset itself, as plain as it gets.
            connection.register(alias, bounded(files.storage.parquet_dataset(files.keys)))
            return {alias: files.label, **shown}
        layout = _layout(files, fs, paths)
    except (pa.ArrowInvalid, OSError) as exc:
        hint = (
            " Files that are not Parquet need a file format: FROM @stage/path (FILE_FORMAT => 'fmt'), "
            "with fmt made by CREATE FILE FORMAT fmt TYPE = CSV | JSON."
            if files.fmt is None
            else ""
        )
        raise InvalidArgumentError(
            f"Cannot read {files.label} as {files.type}: {_scrub(str(exc), paths, files.names)}{hint}"
        ) from None
    partitions = [
        (pc.field(_FILENAME) == name) & (pc.field(_LAST_MODIFIED) == pa.scalar(modified, pa.timestamp("us")))
        for name, modified in zip(files.names, files.modified, strict=True)
    ]
    dataset = ds.FileSystemDataset.from_paths(
        paths,
        schema=pa.schema([*layout.schema, *_PARTITION_FIELDS]),
        format=layout.format,
        filesystem=fs,
        partitions=partitions,
    )
    raw = f"{alias}__files"
    connection.register(raw, _numbered(dataset) if _ROW_NUMBER in virtual else bounded(dataset))
    select = list(layout.visible)
    for name in sorted(virtual):
        column = _quote(VIRTUAL_PREFIX + name)
        match = _POSITIONAL.fullmatch(name)
        if match is not None:
            expr = layout.positional(int(match.group(1)))
            if expr is None:
                raise InvalidArgumentError(
                    f"SQL compilation error: {files.type} files have one positional column, $1 (the whole "
                    f"{'row as an object' if files.type == 'PARQUET' else 'value'}); name a field as $1:field "
                    f"instead of {name}."
                )
            select.append(f"{expr} AS {column}")
        elif name == _SCAN_TIME:
            select.append(f"CAST(get_current_timestamp() AS TIMESTAMPTZ) AS {column}")
        else:
            select.append(f"{_quote(name)} AS {column}")
    connection.execute(f"CREATE TEMP VIEW {_quote(alias)} AS SELECT {', '.join(select)} FROM {_quote(raw)}")
    return {raw: files.label, alias: files.label, **shown}


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _scrub(message: str, paths: list[str], names: list[str]) -> str:
    """Name files as the stage does, never by where the server keeps them."""
    for path, name in zip(paths, names, strict=True):
        message = message.replace(path, name)
    return message


def _layout(files: StagedFiles, fs: pafs.FileSystem, paths: list[str]) -> _Layout:
    fmt = files.fmt
    if fmt is None or fmt.type == "PARQUET":
        schema = ds.dataset(paths, format="parquet", filesystem=fs).schema
        return _object_layout(ds.ParquetFileFormat(), schema)
    if fmt.type == "JSON":
        return _json_layout(fmt, fs, paths[0])
    return _csv_layout(fmt, fs, paths[0])


def _object_layout(file_format: ds.FileFormat, schema: pa.Schema) -> _Layout:
    """Named columns, and $1 the whole row as one JSON object (Parquet; JSON read with INFER_SCHEMA)."""
    names = [_quote(f.name) for f in schema]
    row = "to_json(struct_pack(" + ", ".join(f"{n} := {n}" for n in names) + "))"
    return _Layout(file_format, schema, names, lambda k: row if k == 1 else None)


def _json_layout(fmt: FileFormat, fs: pafs.FileSystem, first: str) -> _Layout:
    if fmt.get("INFER_SCHEMA"):
        json_format = ds.JsonFileFormat(parse_options=pajson.ParseOptions(unexpected_field_behavior="infer"))
        return _object_layout(json_format, json_format.inspect(first, fs))
    # Each line stays text here and becomes JSON in DuckDB: rows may differ in shape and type
    # (Snowflake's VARIANT), which pyarrow's JSON reader, inferring one schema, would refuse.
    lines = ds.CsvFileFormat(
        read_options=pcsv.ReadOptions(column_names=["$1"]),
        parse_options=pcsv.ParseOptions(
            delimiter=_NO_DELIMITER, quote_char=False, escape_char=False, ignore_empty_lines=True
        ),
        convert_options=pcsv.ConvertOptions(column_types={"$1": pa.string()}, strings_can_be_null=False),
    )
    return _Layout(
        lines,
        pa.schema([pa.field("$1", pa.string())]),
        ['CAST("$1" AS JSON) AS "$1"'],
        lambda k: 'CAST("$1" AS JSON)' if k == 1 else None,
    )


def _csv_layout(fmt: FileFormat, fs: pafs.FileSystem, first: str) -> _Layout:
    delimiter = fmt.get("FIELD_DELIMITER")
    escape = fmt.get("ESCAPE") or (
        fmt.get("ESCAPE_UNENCLOSED_FIELD") if fmt.given("ESCAPE_UNENCLOSED_FIELD") else None
    )
    parse = pcsv.ParseOptions(
        # FIELD_DELIMITER = NONE: one field per line.
        delimiter=delimiter if delimiter is not None else _NO_DELIMITER,
        quote_char=fmt.get("FIELD_OPTIONALLY_ENCLOSED_BY") or False,
        escape_char=escape or False,
        double_quote=True,
        # An enclosed or escaped field may hold a line break.
        newlines_in_values=bool(fmt.get("FIELD_OPTIONALLY_ENCLOSED_BY") or escape),
        ignore_empty_lines=fmt.get("SKIP_BLANK_LINES"),
    )
    header = bool(fmt.get("PARSE_HEADER"))
    skip = int(fmt.get("SKIP_HEADER"))
    encoding = _ENCODINGS[fmt.get("ENCODING")]
    null_values = list(fmt.get("NULL_IF")) + ([""] if fmt.get("EMPTY_FIELD_AS_NULL") else [])
    inspected = ds.CsvFileFormat(
        read_options=pcsv.ReadOptions(
            skip_rows=skip, autogenerate_column_names=not header, encoding=encoding
        ),
        parse_options=parse,
        convert_options=pcsv.ConvertOptions(null_values=null_values, quoted_strings_can_be_null=False),
    ).inspect(first, fs)
    count = len(inspected)
    infer = bool(fmt.get("INFER_SCHEMA"))
    if infer:
        # Snowflake's INFER_SCHEMA names header-less columns c1, c2, ...
        names = inspected.names if header else [f"c{i + 1}" for i in range(count)]
        types = [pa.string() if pa.types.is_null(f.type) else f.type for f in inspected]
    else:
        names = [f"${i + 1}" for i in range(count)]
        types = [pa.string()] * count
    schema = pa.schema([pa.field(n, t) for n, t in zip(names, types, strict=True)])
    csv_format = ds.CsvFileFormat(
        read_options=pcsv.ReadOptions(column_names=names, skip_rows=skip + int(header), encoding=encoding),
        parse_options=parse,
        convert_options=pcsv.ConvertOptions(
            column_types=dict(zip(names, types, strict=True)),
            null_values=null_values,
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    )
    trim = bool(fmt.get("TRIM_SPACE"))

    def value(i: int) -> str:
        column = _quote(names[i])
        return f"trim({column})" if trim and pa.types.is_string(types[i]) else column

    if infer or header:
        shown = inspected.names if header else names
        visible = [f"{value(i)} AS {_quote(shown[i])}" for i in range(count)]
    else:
        visible = [f"{value(i)} AS {_quote(names[i])}" for i in range(count)]
    return _Layout(
        csv_format,
        schema,
        visible,
        # A field past the end of the record is NULL, as in Snowflake.
        lambda k: value(k - 1) if k <= count else "CAST(NULL AS VARCHAR)",
    )


def _numbered(dataset: ds.FileSystemDataset) -> pa.RecordBatchReader:
    """The files one after the other, each row numbered from 1 within its file."""
    schema = dataset.schema.append(pa.field(_ROW_NUMBER, pa.int64()))

    def batches() -> Iterator[pa.RecordBatch]:
        for fragment in dataset.get_fragments():
            done = 0
            scanner = ds.Scanner.from_fragment(fragment, schema=dataset.schema, use_threads=False)
            for batch in scanner.to_batches():
                numbers = pa.array(np.arange(done + 1, done + 1 + batch.num_rows, dtype=np.int64))
                done += batch.num_rows
                yield pa.RecordBatch.from_arrays([*batch.columns, numbers], schema=schema)

    return pa.RecordBatchReader.from_batches(schema, batches())
