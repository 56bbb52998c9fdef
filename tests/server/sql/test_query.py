"""Snowflake SELECT -> DuckDB translation: identifiers, sources, refusals."""

from __future__ import annotations

import pytest

from runbatch.errors import InvalidArgumentError, UnsupportedError
from runbatch.wire.resources import is_query
from server.sql.query import StageSource, TableSource, translate


def test_stage_source_with_pattern_and_upper_cased_identifiers() -> None:
    query = translate(
        "select a, b as c from @db.s.stg/in/ (FILE_FORMAT => 'pq', PATTERN => '.*[.]parquet') where b > 1"
    )
    assert query.sql == 'SELECT A, B AS C FROM "__runbatch_source_0" WHERE B > 1'
    assert query.sources == [StageSource("__runbatch_source_0", "@db.s.stg/in/", ".*[.]parquet", "pq")]
    assert query.virtual == frozenset()


def test_positional_and_metadata_columns_are_reserved_names_output_as_written() -> None:
    query = translate(
        "SELECT t.$1, $2 AS two, METADATA$FILENAME, t.metadata$file_row_number FROM @s/a.csv "
        "(FILE_FORMAT => 'db.sch.csv') t"
    )
    assert query.sql == (
        'SELECT T."__runbatch_virtual_$1" AS "$1", "__runbatch_virtual_$2" AS TWO, '
        '"__runbatch_virtual_METADATA$FILENAME" AS "METADATA$FILENAME", '
        'T."__runbatch_virtual_METADATA$FILE_ROW_NUMBER" AS "METADATA$FILE_ROW_NUMBER" '
        'FROM "__runbatch_source_0" AS "T"'
    )
    assert query.virtual == {"$1", "$2", "METADATA$FILENAME", "METADATA$FILE_ROW_NUMBER"}
    assert query.sources == [StageSource("__runbatch_source_0", "@s/a.csv", None, "db.sch.csv")]


def test_star_over_stage_files_leaves_out_positional_and_metadata_columns() -> None:
    query = translate(
        "WITH c AS (SELECT METADATA$FILENAME AS f, *, s.* FROM @st (FILE_FORMAT => 'x') s) SELECT * FROM c"
    )
    excluded = '("__runbatch_virtual_METADATA$FILENAME")'
    assert query.sql == (
        f'WITH C AS (SELECT "__runbatch_virtual_METADATA$FILENAME" AS F, * EXCLUDE {excluded}, '
        f'S.* EXCLUDE {excluded} FROM "__runbatch_source_0" AS "S") SELECT * FROM C'
    )


def test_paths_into_values_keep_snowflake_semantics() -> None:
    # $1:a is semi-structured (JSON); cast to a scalar type it is the value itself, not its JSON text.
    query = translate(
        "SELECT $1:a, $1:a.b::string AS s, $1:n::int AS n, $1:o::variant AS o FROM @s (FILE_FORMAT => f)"
    ).sql.replace("__runbatch_virtual_", "")
    assert query == (
        """SELECT "$1" -> '$.a', CAST("$1" ->> '$.a.b' AS TEXT) AS S, CAST("$1" ->> '$.n' AS INT) AS N, """
        """TO_JSON("$1" -> '$.o') AS O FROM "__runbatch_source_0\""""
    )
    # An unquoted format name is a file format, not a table to read.
    assert translate("SELECT 1 FROM @s (FILE_FORMAT => f)").sources == [
        StageSource("__runbatch_source_0", "@s", None, "F")
    ]


def test_tables_keep_their_names_as_aliases_and_ctes_are_not_sources() -> None:
    query = translate(
        'WITH c AS (SELECT * FROM t) SELECT c.id, "Mixed".x FROM c JOIN db.sch."Mixed" ON c.id = 1'
    )
    assert query.sql == (
        'WITH C AS (SELECT * FROM "__runbatch_source_1" AS "T") SELECT C.ID, "Mixed".X FROM C '
        'JOIN "__runbatch_source_0" AS "Mixed" ON C.ID = 1'
    )
    assert query.sources == [
        TableSource("__runbatch_source_0", ["DB", "SCH", "Mixed"]),
        TableSource("__runbatch_source_1", ["T"]),
    ]


def test_snowflake_functions_become_duckdb_ones() -> None:
    assert translate("SELECT IFF(a > 1, 'x', 'y') FROM t").sql == (
        """SELECT CASE WHEN A > 1 THEN 'x' ELSE 'y' END FROM "__runbatch_source_0" AS "T\""""
    )


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        ("SELECT $x FROM @s", UnsupportedError, r"Session variables \(\$x\) are not supported"),
        ("SELECT a FROM t WHERE b = ?", UnsupportedError, "Bind variables are not supported"),
        (
            "SELECT METADATA$FILE_CONTENT_KEY FROM @s",
            UnsupportedError,
            "METADATA.FILE_CONTENT_KEY is not supported",
        ),
        ("SELECT * FROM read_parquet('/etc/x')", UnsupportedError, "is not supported; select from a table"),
        ("SELECT * FROM t AT (OFFSET => -60)", UnsupportedError, "Time travel"),
        ("SELECT 1; SELECT 2", InvalidArgumentError, "one statement at a time; this text has 2"),
        ("SELECT FROM WHERE (", InvalidArgumentError, "SQL compilation error"),
    ],
)
def test_refusals_name_the_problem(sql: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        translate(sql)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT 1", True),
        ("-- note\n (select 1)", True),
        ("with x as (select 1) select * from x", True),
        ("SHOW TABLES", False),
        ("selection", False),
    ],
)
def test_is_query(sql: str, expected: bool) -> None:
    assert is_query(sql) is expected
