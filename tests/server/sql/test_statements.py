from __future__ import annotations

import pytest

from runbatch.errors import InvalidArgumentError, UnsupportedError
from server.sql.statements import (
    AlterModel,
    CreateComputePool,
    CreateNamespace,
    Describe,
    Drop,
    ListFiles,
    RemoveFiles,
    Show,
    ShowInModel,
    ShowScoped,
    TagAssignment,
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
            "ALTER TABLE t ADD COLUMN c INT",
            UnsupportedError,
            "Unsupported SQL statement 'ALTER TABLE t ...'",
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


# -- models, job services and DESCRIBE -------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "parsed"),
    [
        ("SHOW MODELS", ShowScoped("MODELS", None)),
        (
            "show terse models like 'P%' in schema a.b",
            ShowScoped("MODELS", "P%", "SCHEMA", ["A", "B"]),
        ),
        ("SHOW MODELS IN DATABASE", ShowScoped("MODELS", None, "DATABASE", [])),
        ('SHOW MODELS IN DATABASE "Db"', ShowScoped("MODELS", None, "DATABASE", ["Db"])),
        ("SHOW MODELS IN SCHEMA", ShowScoped("MODELS", None, "SCHEMA", [])),
        ("SHOW MODELS IN ACCOUNT", ShowScoped("MODELS", None, "ACCOUNT", [])),
        # What Snowflake's list_jobs sends when job history is off (no space before IN).
        (
            "SHOW JOB SERVICES LIKE 'MLJOB_%'IN account LIMIT 10",
            ShowScoped("JOB SERVICES", "MLJOB_%", "ACCOUNT", [], None, 10),
        ),
        ("SHOW JOB SERVICES IN DB.SCH", ShowScoped("JOB SERVICES", None, "SCHEMA", ["DB", "SCH"])),
        ("SHOW JOB SERVICES IN DATABASE LIMIT 3", ShowScoped("JOB SERVICES", None, "DATABASE", [], None, 3)),
        (
            "SHOW JOB SERVICES IN COMPUTE POOL p STARTS WITH 'BATCH'",
            ShowScoped("JOB SERVICES", None, "COMPUTE POOL", ["P"], "BATCH"),
        ),
        ("SHOW VERSIONS IN MODEL m", ShowInModel("VERSIONS", None, ["M"])),
        ("SHOW VERSIONS LIKE 'v%' IN MODEL db.s.m", ShowInModel("VERSIONS", "v%", ["DB", "S", "M"])),
        # The text Snowflake's client sends for ModelVersion.show_functions().
        (
            'SHOW FUNCTIONS IN MODEL TEMP."test".MODEL VERSION "v1" ',
            ShowInModel("FUNCTIONS", None, ["TEMP", "test", "MODEL"], "v1"),
        ),
        ("DESC TABLE t TYPE = COLUMNS", Describe("TABLE", ["T"])),
        ("describe database d", Describe("DATABASE", ["D"])),
        ("DESC SCHEMA d.s", Describe("SCHEMA", ["D", "S"])),
        ("DESC STAGE s", Describe("STAGE", ["S"])),
        ("DESCRIBE MODEL a.b.m", Describe("MODEL", ["A", "B", "M"])),
        ("DESC COMPUTE POOL p", Describe("COMPUTE POOL", ["P"])),
        ("describe job service j", Describe("JOB SERVICE", ["J"])),
        ("DESCRIBE SERVICE a.b.j", Describe("JOB SERVICE", ["A", "B", "J"])),
        ("DROP MODEL IF EXISTS a.b.m", Drop("MODEL", ["A", "B", "M"], True)),
        ("drop model m", Drop("MODEL", ["M"], False)),
        (
            "ALTER MODEL m SET DEFAULT_VERSION = v2",
            AlterModel(["M"], False, "SET", properties={"DEFAULT_VERSION": "V2"}),
        ),
        (
            "ALTER MODEL IF EXISTS m SET COMMENT = 'it''s' DEFAULT_VERSION = 'v1'",
            AlterModel(["M"], True, "SET", properties={"COMMENT": "it's", "DEFAULT_VERSION": "V1"}),
        ),
        (
            'ALTER MODEL m SET DEFAULT_VERSION = "v1"',
            AlterModel(["M"], False, "SET", properties={"DEFAULT_VERSION": "v1"}),
        ),
        (
            "ALTER MODEL m VERSION v1 SET ALIAS = champion",
            AlterModel(["M"], False, "SET ALIAS", "V1", {"ALIAS": "CHAMPION"}),
        ),
        ("ALTER MODEL m VERSION champion UNSET ALIAS", AlterModel(["M"], False, "UNSET ALIAS", "CHAMPION")),
        (
            "ALTER MODEL m SET TAG t1 = 'a', db.s.t2 = 'b'",
            AlterModel(
                ["M"],
                False,
                "SET TAG",
                tags=[TagAssignment(["T1"], "a"), TagAssignment(["DB", "S", "T2"], "b")],
            ),
        ),
        (
            "ALTER MODEL m UNSET TAG t1, t2",
            AlterModel(
                ["M"], False, "UNSET TAG", tags=[TagAssignment(["T1"], None), TagAssignment(["T2"], None)]
            ),
        ),
        # The text Snowflake's client sends for ModelVersion.comment = ...
        (
            'ALTER MODEL TEMP."test".MODEL MODIFY VERSION V2 SET COMMENT=$$this is a comment$$',
            AlterModel(
                ["TEMP", "test", "MODEL"], False, "MODIFY VERSION", "V2", {"COMMENT": "this is a comment"}
            ),
        ),
        (
            """ALTER MODEL m MODIFY VERSION v1 SET METADATA = '{"metrics": {}}'""",
            AlterModel(["M"], False, "MODIFY VERSION", "V1", {"METADATA": '{"metrics": {}}'}),
        ),
        ("ALTER MODEL m DROP VERSION v1", AlterModel(["M"], False, "DROP VERSION", "V1")),
        ("COMMENT ON MODEL m IS $$c$$", AlterModel(["M"], False, "SET", properties={"COMMENT": "c"})),
        (
            "COMMENT IF EXISTS ON MODEL m IS 'c'",
            AlterModel(["M"], True, "SET", properties={"COMMENT": "c"}),
        ),
    ],
)
def test_parses_model_statements(sql: str, parsed: object) -> None:
    assert parse_statement(sql) == parsed


@pytest.mark.parametrize(
    ("sql", "error", "message"),
    [
        (
            "ALTER MODEL m RENAME TO n",
            UnsupportedError,
            "ALTER MODEL ... RENAME TO is not supported: runbatch cannot rename a model. Log its versions "
            "under the new name (Registry.log_model(model_version, model_name=...)), then DROP MODEL the old one.",
        ),
        (
            "ALTER MODEL m ADD VERSION v2 FROM @stage/path",
            UnsupportedError,
            "ALTER MODEL ... ADD VERSION is not supported: add versions with Registry.log_model.",
        ),
        (
            "ALTER MODEL m SET",
            InvalidArgumentError,
            "SQL compilation error: ALTER MODEL ... SET needs COMMENT = ... or DEFAULT_VERSION = ... "
            "at position 17, found end of statement.",
        ),
        (
            "ALTER MODEL m SET ALIAS = x",
            InvalidArgumentError,
            "SQL compilation error: unsupported ALTER MODEL ... SET property ALIAS at position 18, found 'ALIAS'.",
        ),
        (
            "ALTER MODEL m VERSION v1 SET COMMENT = 'x'",
            InvalidArgumentError,
            "SQL compilation error: expected SET ALIAS = <alias> or UNSET ALIAS at position 25, found 'SET'.",
        ),
        (
            "ALTER MODEL m MODIFY VERSION v1 SET DEFAULT_VERSION = v1",
            InvalidArgumentError,
            "SQL compilation error: unsupported MODIFY VERSION ... SET property DEFAULT_VERSION at position 36, "
            "found 'DEFAULT_VERSION'.",
        ),
        (
            "ALTER MODEL m",
            InvalidArgumentError,
            "SQL compilation error: expected SET, SET TAG, UNSET TAG, VERSION, MODIFY VERSION or DROP VERSION "
            "at position 13, found end of statement.",
        ),
        (
            "ALTER MODEL m SET DEFAULT_VERSION = '1 2'",
            InvalidArgumentError,
            "SQL compilation error: expected a version or alias name at position 36, found \"'1 2'\".",
        ),
        (
            "SHOW JOB SERVICES LIMIT ten",
            InvalidArgumentError,
            "SQL compilation error: LIMIT takes a whole number of rows at position 24, found 'ten'.",
        ),
        (
            "SHOW JOB SERVICES LIMIT 5 FROM 'A'",
            InvalidArgumentError,
            "SQL compilation error: LIMIT ... FROM is not supported; filter with LIKE or STARTS WITH at "
            "position 26, found 'FROM'.",
        ),
        (
            "SHOW VERSIONS m",
            InvalidArgumentError,
            "SQL compilation error: expected IN MODEL at position 14, found 'm'.",
        ),
        (
            "DESC TABLE t TYPE = STAGE",
            InvalidArgumentError,
            "SQL compilation error: DESCRIBE TABLE supports TYPE = COLUMNS only at position 20, found 'STAGE'.",
        ),
    ],
)
def test_model_statement_errors_name_the_problem(sql: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as exc:
        parse_statement(sql)
    assert str(exc.value) == message


@pytest.mark.parametrize("sql", ["DESC VIEW v", "SHOW SERVICES", "ALTER TABLE t RENAME TO u"])
def test_other_statements_stay_unsupported(sql: str) -> None:
    head = " ".join(sql.split()[:3])
    with pytest.raises(UnsupportedError) as exc:
        parse_statement(sql)
    assert str(exc.value).startswith(
        f"Unsupported SQL statement '{head} ...'. runbatch runs these statements: "
    )


def test_the_unsupported_message_lists_the_model_statements() -> None:
    with pytest.raises(UnsupportedError) as exc:
        parse_statement("TRUNCATE TABLE t")  # GRANT is supported now (server.auth.access_sql)
    for listed in (
        "DROP DATABASE|SCHEMA|STAGE|TABLE|MODEL|",
        "SHOW DATABASES|SCHEMAS|STAGES|TABLES|COMPUTE POOLS|MODELS|JOB SERVICES",
        "SHOW VERSIONS|FUNCTIONS IN MODEL, ",
        "DESCRIBE|DESC DATABASE|SCHEMA|STAGE|TABLE|MODEL|COMPUTE POOL|[JOB] SERVICE, ",
        "ALTER MODEL, COMMENT ON MODEL, ",
        "CREATE|DROP USER|ROLE, ALTER USER, GRANT|REVOKE, SHOW USERS|ROLES|GRANTS|FUTURE GRANTS",
    ):
        assert listed in str(exc.value)
