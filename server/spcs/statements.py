"""The SQL of job services: EXECUTE JOB SERVICE, DROP SERVICE, SYSTEM$GET_SERVICE_STATUS / _LOGS."""

from __future__ import annotations

import re
from dataclasses import dataclass

from runbatch.errors import InvalidArgumentError
from server.sql.tokens import Cursor, Kind

__all__ = [
    "AlterService",
    "CreateService",
    "CreateServiceFunction",
    "DropFunction",
    "DropService",
    "ExecuteJobService",
    "ServiceLogs",
    "ServiceStatement",
    "ServiceStatus",
    "ShowEndpoints",
    "ShowServices",
    "is_service_statement",
    "parse_service_statement",
]

_DETECT = re.compile(
    r"^\s*(EXECUTE\s+JOB\s+SERVICE\b|DROP\s+SERVICE\b|CREATE\s+SERVICE\b|ALTER\s+SERVICE\b|SHOW\s+SERVICES\b"
    r"|SHOW\s+ENDPOINTS\b|(SELECT|CALL)\s+SYSTEM\$GET_SERVICE_(STATUS|LOGS)\s*\(|DROP\s+FUNCTION\b"
    r"|CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\b.*\bSERVICE\s*=)",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class ExecuteJobService:
    pool: str
    name: list[str]
    is_async: bool
    spec_text: str | None  # FROM SPECIFICATION $$...$$
    stage: str | None  # FROM @stage SPECIFICATION_FILE = '...'
    spec_file: str | None


@dataclass(frozen=True)
class CreateService:
    name: list[str]
    if_not_exists: bool
    pool: str
    spec_text: str | None
    stage: str | None
    spec_file: str | None
    min_instances: int
    max_instances: int


@dataclass(frozen=True)
class AlterService:
    name: list[str]
    if_exists: bool
    action: str  # SUSPEND, RESUME


@dataclass(frozen=True)
class ShowServices:
    like: str | None
    in_parts: list[str]


@dataclass(frozen=True)
class ShowEndpoints:
    name: list[str]


@dataclass(frozen=True)
class CreateServiceFunction:
    name: list[str]
    or_replace: bool
    if_not_exists: bool
    arguments: list[tuple[str, str]]
    returns: str
    service: list[str]
    endpoint: str
    path: str
    max_batch_rows: int | None


@dataclass(frozen=True)
class DropFunction:
    name: list[str]
    if_exists: bool


@dataclass(frozen=True)
class DropService:
    name: list[str]
    if_exists: bool


@dataclass(frozen=True)
class ServiceStatus:
    name: list[str]


@dataclass(frozen=True)
class ServiceLogs:
    name: list[str]
    instance: int
    container: str
    lines: int | None


ServiceStatement = (
    ExecuteJobService
    | CreateService
    | AlterService
    | ShowServices
    | ShowEndpoints
    | CreateServiceFunction
    | DropFunction
    | DropService
    | ServiceStatus
    | ServiceLogs
)


def is_service_statement(sql: str) -> bool:
    return _DETECT.match(sql) is not None


def parse_service_statement(sql: str) -> ServiceStatement:
    cur = Cursor(sql)
    if cur.accept_keyword("EXECUTE", "JOB", "SERVICE"):
        stmt: ServiceStatement = _execute(cur)
    elif cur.at_keyword("CREATE", "FUNCTION") or cur.at_keyword("CREATE", "OR", "REPLACE", "FUNCTION"):
        stmt = _create_function(cur)
    elif cur.accept_keyword("DROP", "FUNCTION"):
        if_exists = cur.accept_keyword("IF", "EXISTS")
        name = cur.qualified_name(3)
        if cur.accept_punct("("):  # DROP FUNCTION f(VARCHAR): the signature names the one function
            while not cur.accept_punct(")"):
                cur.next()
        stmt = DropFunction(name, if_exists)
    elif cur.accept_keyword("CREATE", "SERVICE"):
        stmt = _create(cur)
    elif cur.accept_keyword("ALTER", "SERVICE"):
        if_exists = cur.accept_keyword("IF", "EXISTS")
        name = cur.qualified_name(3)
        action = cur.next().text.upper()
        if action not in ("SUSPEND", "RESUME"):
            cur.fail("ALTER SERVICE supports SUSPEND and RESUME")
        stmt = AlterService(name, if_exists, action)
    elif cur.accept_keyword("SHOW", "SERVICES"):
        like = cur.string() if cur.accept_keyword("LIKE") else None
        in_parts: list[str] = []
        if cur.accept_keyword("IN"):
            cur.accept_keyword("DATABASE") or cur.accept_keyword("SCHEMA")
            in_parts = cur.qualified_name(2)
        stmt = ShowServices(like, in_parts)
    elif cur.accept_keyword("SHOW", "ENDPOINTS", "IN", "SERVICE"):
        stmt = ShowEndpoints(cur.qualified_name(3))
    elif cur.accept_keyword("DROP", "SERVICE"):
        if_exists = cur.accept_keyword("IF", "EXISTS")
        stmt = DropService(cur.qualified_name(3), if_exists)
    else:
        cur.next()  # SELECT or CALL
        function = cur.next().text.upper()
        cur.expect_punct("(")
        args = _arguments(cur)
        stmt = _system_function(cur, function, args)
    cur.end()
    return stmt


def _execute(cur: Cursor) -> ExecuteJobService:
    pool: str | None = None
    name: list[str] | None = None
    is_async = False
    spec_text = stage = spec_file = None
    while cur.peek().kind is not Kind.END and not (cur.peek().kind is Kind.PUNCT and cur.peek().text == ";"):
        if cur.accept_keyword("IN", "COMPUTE", "POOL"):
            pool = cur.identifier()
        elif cur.accept_keyword("NAME"):
            cur.expect_punct("=")
            name = cur.qualified_name(3)
        elif cur.accept_keyword("ASYNC"):
            cur.expect_punct("=")
            value = cur.value().upper()
            if value not in ("TRUE", "FALSE"):
                cur.fail("ASYNC takes TRUE or FALSE")
            is_async = value == "TRUE"
        elif cur.accept_keyword("FROM"):
            spec_text, stage, spec_file = _source(cur)
        elif cur.accept_keyword("QUERY_WAREHOUSE") or cur.accept_keyword("COMMENT"):
            cur.expect_punct("=")
            cur.value()  # no warehouses here; a comment is not kept
        else:
            cur.fail("expected IN COMPUTE POOL, NAME, ASYNC or FROM")
    if pool is None:
        raise InvalidArgumentError("EXECUTE JOB SERVICE needs IN COMPUTE POOL <pool>.")
    if name is None:
        raise InvalidArgumentError("EXECUTE JOB SERVICE needs NAME = <job name>.")
    if spec_text is None and stage is None:
        raise InvalidArgumentError(
            "EXECUTE JOB SERVICE needs FROM SPECIFICATION $$<yaml>$$ or FROM @stage SPECIFICATION_FILE = 'spec.yaml'."
        )
    return ExecuteJobService(pool, name, is_async, spec_text, stage, spec_file)


def _create(cur: Cursor) -> CreateService:
    if_not_exists = cur.accept_keyword("IF", "NOT", "EXISTS")
    name = cur.qualified_name(3)
    pool: str | None = None
    spec_text = stage = spec_file = None
    counts = {"MIN_INSTANCES": 1, "MAX_INSTANCES": 1}
    while cur.peek().kind is not Kind.END and not (cur.peek().kind is Kind.PUNCT and cur.peek().text == ";"):
        if cur.accept_keyword("IN", "COMPUTE", "POOL"):
            pool = cur.identifier()
        elif cur.accept_keyword("FROM"):
            spec_text, stage, spec_file = _source(cur)
        elif cur.peek().text.upper() in counts:
            key = cur.next().text.upper()
            cur.expect_punct("=")
            tok = cur.next()
            if tok.kind is not Kind.NUMBER or not tok.text.isdigit():
                cur.fail(f"{key} takes a whole number", tok)
            counts[key] = int(tok.text)
        elif cur.peek().text.upper() in ("QUERY_WAREHOUSE", "COMMENT", "AUTO_RESUME", "MIN_READY_INSTANCES"):
            cur.next()
            cur.expect_punct("=")
            cur.value()  # accepted for portability; they change nothing here
        else:
            cur.fail("expected IN COMPUTE POOL, FROM, MIN_INSTANCES or MAX_INSTANCES")
    if pool is None:
        raise InvalidArgumentError("CREATE SERVICE needs IN COMPUTE POOL <pool>.")
    if spec_text is None and stage is None:
        raise InvalidArgumentError(
            "CREATE SERVICE needs FROM SPECIFICATION $$<yaml>$$ or FROM @stage SPECIFICATION_FILE = 'spec.yaml'."
        )
    return CreateService(
        name,
        if_not_exists,
        pool,
        spec_text,
        stage,
        spec_file,
        counts["MIN_INSTANCES"],
        counts["MAX_INSTANCES"],
    )


def _sql_type(cur: Cursor) -> str:
    """A type name; a length or precision (VARCHAR(100), NUMBER(38, 0)) changes nothing here."""
    kind = cur.next().text.upper()
    if cur.accept_punct("("):
        while not cur.accept_punct(")"):
            cur.next()
    return kind


def _create_function(cur: Cursor) -> CreateServiceFunction:
    cur.expect_keyword("CREATE")
    or_replace = cur.accept_keyword("OR", "REPLACE")
    cur.expect_keyword("FUNCTION")
    if_not_exists = cur.accept_keyword("IF", "NOT", "EXISTS")
    name = cur.qualified_name(3)
    cur.expect_punct("(")
    arguments: list[tuple[str, str]] = []
    while not cur.accept_punct(")"):
        if arguments:
            cur.expect_punct(",")
        arguments.append((cur.identifier(), _sql_type(cur)))
    cur.expect_keyword("RETURNS")
    returns = _sql_type(cur)
    service: list[str] | None = None
    endpoint = path = None
    max_batch_rows: int | None = None
    while not cur.at_keyword("AS"):
        if cur.peek().kind is Kind.END:
            cur.fail("expected AS '/path'")
        word = cur.next().text.upper()
        if word == "SERVICE":
            cur.expect_punct("=")
            service = cur.qualified_name(3)
        elif word == "ENDPOINT":
            cur.expect_punct("=")
            tok = cur.next()
            if tok.kind not in (Kind.WORD, Kind.QUOTED, Kind.STRING):
                cur.fail("expected an endpoint name", tok)
            endpoint = tok.value  # matched against the specification's names, ignoring case
        elif word == "MAX_BATCH_ROWS":
            cur.expect_punct("=")
            tok = cur.next()
            if tok.kind is not Kind.NUMBER or not tok.text.isdigit():
                cur.fail("MAX_BATCH_ROWS takes a whole number", tok)
            max_batch_rows = int(tok.text)
        elif word in ("NOT", "NULL", "CALLED", "ON", "INPUT", "STRICT", "VOLATILE", "IMMUTABLE"):
            continue  # null handling and volatility words: rows are sent as they are
        else:
            cur.fail(
                f"unexpected {word} in a service function; expected SERVICE, ENDPOINT, MAX_BATCH_ROWS or AS"
            )
    cur.expect_keyword("AS")
    path = cur.string()
    if service is None or endpoint is None:
        raise InvalidArgumentError(
            "A service function needs SERVICE = <service> and ENDPOINT = <endpoint> before AS '/path'."
        )
    return CreateServiceFunction(
        name, or_replace, if_not_exists, arguments, returns, service, endpoint, path, max_batch_rows
    )


def _source(cur: Cursor) -> tuple[str | None, str | None, str | None]:
    """FROM SPECIFICATION $$...$$ or FROM @stage SPECIFICATION_FILE = '...' (after FROM)."""
    if cur.accept_keyword("SPECIFICATION"):
        return cur.string(), None, None
    tok = cur.next()
    if tok.kind is not Kind.STAGE:
        cur.fail("expected FROM SPECIFICATION $$...$$ or FROM @stage SPECIFICATION_FILE = '...'", tok)
    cur.expect_keyword("SPECIFICATION_FILE")
    cur.expect_punct("=")
    return None, tok.value, cur.string()


def _arguments(cur: Cursor) -> list[str]:
    args: list[str] = []
    if cur.accept_punct(")"):
        return args
    while True:
        tok = cur.next()
        if tok.kind not in (Kind.STRING, Kind.NUMBER):
            cur.fail("expected a string or number argument", tok)
        args.append(tok.value)
        if cur.accept_punct(")"):
            return args
        cur.expect_punct(",")


def _system_function(cur: Cursor, function: str, args: list[str]) -> ServiceStatement:
    if not args:
        cur.fail(f"{function} takes the service name as its first argument")
    name = _name(args[0])
    if function == "SYSTEM$GET_SERVICE_STATUS":
        if len(args) > 2:
            cur.fail("SYSTEM$GET_SERVICE_STATUS takes ('service' [, timeout_secs])")
        return ServiceStatus(name)
    if len(args) not in (3, 4) or not args[1].isdigit() or (len(args) == 4 and not args[3].isdigit()):
        cur.fail("SYSTEM$GET_SERVICE_LOGS takes ('service', instance_id, 'container' [, number_of_lines])")
    return ServiceLogs(name, int(args[1]), args[2], int(args[3]) if len(args) == 4 else None)


def _name(text: str) -> list[str]:
    """A service name given as a string ('db.schema.svc'), resolved as an identifier."""
    return Cursor(text).qualified_name(3)
