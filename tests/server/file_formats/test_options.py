"""File format options: parsing from SQL, checking against what runbatch honours, normalizing, storing."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, UnsupportedError
from server.file_formats import service
from server.file_formats.options import FileFormat, file_format
from server.resources.service import create_database
from server.sql.statements import CreateFileFormat, Drop, Show, parse_statement


def test_create_file_format_statement_reads_lists_strings_and_words() -> None:
    stmt = parse_statement(
        "CREATE OR REPLACE FILE FORMAT db.s.pipe TYPE = 'csv' FIELD_DELIMITER = '|' SKIP_HEADER = 1 "
        "NULL_IF = ('\\\\N', 'NULL', '') FIELD_OPTIONALLY_ENCLOSED_BY = '\"' EMPTY_FIELD_AS_NULL = FALSE "
        "COMMENT = 'pipes';"
    )
    assert stmt == CreateFileFormat(
        ["DB", "S", "PIPE"],
        True,
        False,
        "pipes",
        {
            "TYPE": "csv",
            "FIELD_DELIMITER": "|",
            "SKIP_HEADER": "1",
            "NULL_IF": ["\\N", "NULL", ""],
            "FIELD_OPTIONALLY_ENCLOSED_BY": '"',
            "EMPTY_FIELD_AS_NULL": "FALSE",
        },
    )
    assert parse_statement("CREATE FILE FORMAT IF NOT EXISTS j TYPE = JSON NULL_IF = ()") == CreateFileFormat(
        ["J"], False, True, None, {"TYPE": "JSON", "NULL_IF": []}
    )
    assert parse_statement("drop file format if exists a.b.f") == Drop("FILE FORMAT", ["A", "B", "F"], True)
    assert parse_statement("SHOW FILE FORMATS LIKE 'p%' IN SCHEMA db.s") == Show(
        "FILE FORMATS", "p%", ["DB", "S"]
    )


def test_options_are_normalized_and_defaults_fill_the_rest() -> None:
    fmt = file_format(
        {
            "type": "csv",
            "field_delimiter": "|",
            "SKIP_HEADER": "2",
            "NULL_IF": "NA",
            "TRIM_SPACE": "true",
            "FIELD_OPTIONALLY_ENCLOSED_BY": "NONE",
            "COMPRESSION": "gzip",
        }
    )
    assert fmt == FileFormat(
        "CSV",
        {
            "FIELD_DELIMITER": "|",
            "SKIP_HEADER": 2,
            "NULL_IF": ["NA"],
            "TRIM_SPACE": True,
            "FIELD_OPTIONALLY_ENCLOSED_BY": None,
            "COMPRESSION": "GZIP",
        },
    )
    assert (fmt.get("EMPTY_FIELD_AS_NULL"), fmt.get("PARSE_HEADER"), fmt.get("RECORD_DELIMITER")) == (
        True,
        False,
        "\n",
    )
    shown = json.loads(fmt.describe())
    assert (shown["TYPE"], shown["SKIP_HEADER"], shown["NULL_IF"], shown["ESCAPE"]) == (
        "CSV",
        2,
        ["NA"],
        "NONE",
    )
    assert file_format({"TYPE": "PARQUET"}).get("COMPRESSION") == "AUTO"


@pytest.mark.parametrize(
    ("raw", "error", "message"),
    [
        ({"FIELD_DELIMITER": ","}, InvalidArgumentError, "a file format needs TYPE = CSV | JSON | PARQUET"),
        ({"TYPE": "XLSX"}, InvalidArgumentError, "unknown file format TYPE = XLSX"),
        ({"TYPE": "AVRO"}, UnsupportedError, "TYPE = AVRO is not supported by runbatch"),
        (
            {"TYPE": "CSV", "FOO": "1", "BAR": "x"},
            InvalidArgumentError,
            "unknown file format option.s. BAR, FOO for TYPE = CSV",
        ),
        (
            {"TYPE": "JSON", "SKIP_HEADER": "1"},
            UnsupportedError,
            "SKIP_HEADER are not supported for TYPE = JSON",
        ),
        ({"TYPE": "CSV", "MULTI_LINE": "TRUE"}, UnsupportedError, "MULTI_LINE are not supported"),
        ({"TYPE": "CSV", "FIELD_DELIMITER": "||"}, UnsupportedError, "must be a single character"),
        (
            {"TYPE": "CSV", "SKIP_HEADER": "-1"},
            InvalidArgumentError,
            "SKIP_HEADER must be a non-negative integer",
        ),
        ({"TYPE": "CSV", "TRIM_SPACE": "maybe"}, InvalidArgumentError, "TRIM_SPACE must be TRUE or FALSE"),
        ({"TYPE": "CSV", "COMPRESSION": "BROTLI"}, UnsupportedError, "COMPRESSION = BROTLI is not supported"),
        ({"TYPE": "CSV", "DATE_FORMAT": "YYYY"}, UnsupportedError, "DATE_FORMAT = YYYY is not supported"),
        ({"TYPE": "CSV", "RECORD_DELIMITER": ";"}, UnsupportedError, "records end at a newline"),
        (
            {"TYPE": "CSV", "ERROR_ON_COLUMN_COUNT_MISMATCH": "FALSE"},
            UnsupportedError,
            "another number of fields",
        ),
        (
            {"TYPE": "CSV", "PARSE_HEADER": "TRUE", "SKIP_HEADER": "1"},
            InvalidArgumentError,
            "cannot be combined",
        ),
        ({"TYPE": "JSON", "STRIP_OUTER_ARRAY": "TRUE"}, UnsupportedError, "newline-delimited JSON"),
        ({"TYPE": "PARQUET", "COMPRESSION": "LZO"}, UnsupportedError, "snappy or none"),
        (
            {"TYPE": "CSV", "INFER_SCHEMA": "TRUE"},
            InvalidArgumentError,
            "unknown file format option.s. INFER_SCHEMA",
        ),
    ],
)
def test_options_runbatch_cannot_honour_are_refused_by_name(
    raw: dict[str, str], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        file_format(raw)


def test_inline_formats_take_the_readers_infer_schema() -> None:
    assert file_format({"TYPE": "CSV", "INFER_SCHEMA": "TRUE"}, inline=True).get("INFER_SCHEMA") is True


def test_service_stores_replaces_resolves_and_drops(db_session: Session) -> None:
    create_database(db_session, "DB", owner="me")
    row, created = service.create_file_format(
        db_session, "DB", "PUBLIC", "F", {"TYPE": "CSV", "SKIP_HEADER": "1"}, owner="me", comment="c"
    )
    assert created and (row.format_type, row.options, row.comment) == ("CSV", {"SKIP_HEADER": 1}, "c")
    with pytest.raises(AlreadyExistsError, match="Object 'DB.PUBLIC.F' already exists"):
        service.create_file_format(db_session, "DB", "PUBLIC", "F", {"TYPE": "JSON"}, owner="me")
    assert (
        service.create_file_format(
            db_session, "DB", "PUBLIC", "F", {"TYPE": "JSON"}, owner="me", if_not_exists=True
        )[1]
        is False
    )
    service.create_file_format(db_session, "DB", "PUBLIC", "F", {"TYPE": "JSON"}, owner="me", or_replace=True)
    assert service.resolve_file_format(db_session, "f", database="DB", schema="PUBLIC") == FileFormat(
        "JSON", {}
    )
    assert service.resolve_file_format(db_session, "db.public.F", database=None, schema=None).type == "JSON"
    assert [r.name for r in service.list_file_formats(db_session, "DB", "PUBLIC")] == ["F"]
    with pytest.raises(InvalidArgumentError, match="there is no current schema"):
        service.resolve_file_format(db_session, "F", database="DB", schema=None)
    assert service.drop_file_format(db_session, "DB", "PUBLIC", "F") is True
    assert service.drop_file_format(db_session, "DB", "PUBLIC", "F", if_exists=True) is False
    with pytest.raises(NotFoundError, match="File format 'DB.PUBLIC.F' does not exist or not authorized."):
        service.resolve_file_format(db_session, "F", database="DB", schema="PUBLIC")
