from __future__ import annotations

import pytest

from runbatch.errors import InvalidArgumentError
from server.spcs.statements import (
    AlterService,
    CreateService,
    CreateServiceFunction,
    DropFunction,
    DropService,
    ExecuteJobService,
    ServiceLogs,
    ServiceStatus,
    ShowEndpoints,
    ShowServices,
    is_service_statement,
    parse_service_statement,
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        (
            "EXECUTE JOB SERVICE IN COMPUTE POOL my_pool NAME = db.sch.job1 "
            "FROM @db.sch.specs SPECIFICATION_FILE = 'job.yaml'",
            ExecuteJobService("MY_POOL", ["DB", "SCH", "JOB1"], False, None, "@db.sch.specs", "job.yaml"),
        ),
        (
            "execute job service in compute pool P from specification $$spec: {}$$ name = j async = true;",
            ExecuteJobService("P", ["J"], True, "spec: {}", None, None),
        ),
        ("DROP SERVICE IF EXISTS s", DropService(["S"], True)),
        (
            "CREATE SERVICE db.sch.web IN COMPUTE POOL p FROM SPECIFICATION $$spec: {}$$ MIN_INSTANCES = 1 "
            "MAX_INSTANCES = 2 AUTO_RESUME = TRUE",
            CreateService(["DB", "SCH", "WEB"], False, "P", "spec: {}", None, None, 1, 2),
        ),
        ("ALTER SERVICE web SUSPEND", AlterService(["WEB"], False, "SUSPEND")),
        ("SHOW SERVICES LIKE 'W%' IN DATABASE db", ShowServices("W%", ["DB"])),
        ("SHOW ENDPOINTS IN SERVICE web", ShowEndpoints(["WEB"])),
        (
            "CREATE OR REPLACE FUNCTION f (w VARCHAR(100), n NUMBER(38, 0)) RETURNS VARCHAR "
            "SERVICE = web ENDPOINT = echoEndpoint MAX_BATCH_ROWS = 50 AS '/echo'",
            CreateServiceFunction(
                ["F"],
                True,
                False,
                [("W", "VARCHAR"), ("N", "NUMBER")],
                "VARCHAR",
                ["WEB"],
                "echoEndpoint",
                "/echo",
                50,
            ),
        ),
        ("DROP FUNCTION IF EXISTS f(VARCHAR)", DropFunction(["F"], True)),
        ("SELECT SYSTEM$GET_SERVICE_STATUS('db.sch.s')", ServiceStatus(["DB", "SCH", "S"])),
        ("CALL SYSTEM$GET_SERVICE_STATUS('s', 10)", ServiceStatus(["S"])),
        ("SELECT SYSTEM$GET_SERVICE_LOGS('s', 0, 'main', 100)", ServiceLogs(["S"], 0, "main", 100)),
    ],
)
def test_statements_parse(sql: str, expected: object) -> None:
    assert is_service_statement(sql)
    assert parse_service_statement(sql) == expected


def test_other_statements_are_not_service_statements() -> None:
    assert not is_service_statement("SELECT 1")
    assert not is_service_statement("DROP STAGE s")
    assert not is_service_statement("SHOW JOB SERVICES")
    assert not is_service_statement("CREATE FUNCTION f (x INT) RETURNS INT AS 'x + 1'")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("EXECUTE JOB SERVICE NAME = j FROM SPECIFICATION $$x$$", "needs IN COMPUTE POOL"),
        ("EXECUTE JOB SERVICE IN COMPUTE POOL p FROM SPECIFICATION $$x$$", r"needs NAME = <job name>"),
        ("EXECUTE JOB SERVICE IN COMPUTE POOL p NAME = j", "needs FROM SPECIFICATION"),
        (
            "EXECUTE JOB SERVICE IN COMPUTE POOL p NAME = j ASYNC = maybe FROM SPECIFICATION $$x$$",
            "ASYNC takes",
        ),
        ("EXECUTE JOB SERVICE IN COMPUTE POOL p NAME = j REPLICAS = 2", "expected IN COMPUTE POOL, NAME"),
        ("SELECT SYSTEM$GET_SERVICE_LOGS('s', 0)", r"takes \('service', instance_id, 'container'"),
        ("CREATE SERVICE s FROM SPECIFICATION $$x$$", "CREATE SERVICE needs IN COMPUTE POOL"),
        ("ALTER SERVICE s RESTART", "ALTER SERVICE supports SUSPEND and RESUME"),
        (
            "CREATE FUNCTION f (x INT) RETURNS INT SERVICE = s AS '/p'",
            "needs SERVICE = <service> and ENDPOINT",
        ),
    ],
)
def test_bad_statements_say_what_is_missing(sql: str, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        parse_service_statement(sql)
