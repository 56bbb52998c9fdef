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
    assert query.sources == [StageSource("__runbatch_source_0", "@db.s.stg/in/", ".*[.]parquet")]


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
        ("SELECT $1 FROM @s", UnsupportedError, r"Positional column references \(\$1\)"),
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
