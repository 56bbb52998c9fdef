from __future__ import annotations

import pytest

from runbatch.errors import InvalidArgumentError, UnsupportedError
from server.sql.statements import (
    CreateComputePool,
    CreateNamespace,
    Drop,
    ListFiles,
    RemoveFiles,
    Show,
    Use,
    parse_statement,
)


@pytest.mark.parametrize(
    ("sql", "parsed"),
    [
        ("create or replace database ml", CreateNamespace("DATABASE", ["ML"], True, False, None)),
        (
            'CREATE SCHEMA IF NOT EXISTS ml."Reg";',
            CreateNamespace("SCHEMA", ["ML", "Reg"], False, True, None),
        ),
        (
            "CREATE STAGE s ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE') COMMENT = 'x'",
            CreateNamespace("STAGE", ["S"], False, False, "x"),
        ),
        (
            "CREATE COMPUTE POOL IF NOT EXISTS p MIN_NODES = 1 MAX_NODES=3 INSTANCE_FAMILY = gpu_nv_s AUTO_RESUME = TRUE",
            CreateComputePool("P", True, 1, 3, "GPU_NV_S", None),
        ),
        ("DROP COMPUTE POOL IF EXISTS p", Drop("COMPUTE POOL", ["P"], True)),
        ("drop stage a.b.c", Drop("STAGE", ["A", "B", "C"], False)),
        ("USE SCHEMA a.b", Use("SCHEMA", ["A", "B"])),
        ("use ml", Use("DATABASE", ["ML"])),
        ("LIST @db.s.stage/path PATTERN = '.*[.]parquet'", ListFiles("@db.s.stage/path", ".*[.]parquet")),
        ("ls '@\"my st\".s/x'", ListFiles('@"my st".s/x', None)),
        ("RM @s/x -- trailing comment", RemoveFiles("@s/x", None)),
        ("SHOW COMPUTE POOLS LIKE 'SYS%'", Show("COMPUTE POOLS", "SYS%", [])),
        ("show stages in schema a.b", Show("STAGES", None, ["A", "B"])),
    ],
)
def test_parses(sql: str, parsed: object) -> None:
    assert parse_statement(sql) == parsed


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        ("SELECT 1", UnsupportedError, "Unsupported SQL statement 'SELECT 1 ...'"),
        (
            "ALTER MODEL m SET COMMENT = 'x'",
            UnsupportedError,
            "Unsupported SQL statement 'ALTER MODEL m ...'",
        ),
        (
            "CREATE DATABASE",
            InvalidArgumentError,
            "expected an identifier at position 15, found end of statement",
        ),
        ("CREATE DATABASE a b", InvalidArgumentError, "expected '=' at position 19, found end of statement"),
        ("CREATE COMPUTE POOL p MIN_NODES=1", InvalidArgumentError, "needs INSTANCE_FAMILY"),
        ("LIST my_stage", InvalidArgumentError, "expected a stage path"),
        ("CREATE STAGE s URL='x", InvalidArgumentError, "unterminated string literal"),
        ("", InvalidArgumentError, "empty statement"),
    ],
)
def test_errors_name_the_problem(sql: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        parse_statement(sql)
