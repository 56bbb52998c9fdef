"""Parse Snowflake control statements into typed statement objects."""

from __future__ import annotations

from dataclasses import dataclass, field

from runbatch.errors import InvalidArgumentError, UnsupportedError
from server.sql.tokens import Cursor, Kind

__all__ = [
    "CreateComputePool",
    "CreateExternalStage",
    "CreateNamespace",
    "Drop",
    "ListFiles",
    "RemoveFiles",
    "Show",
    "Statement",
    "Use",
    "parse_statement",
]


@dataclass(frozen=True)
class CreateNamespace:
    """CREATE DATABASE | SCHEMA | STAGE."""

    kind: str
    parts: list[str]
    or_replace: bool
    if_not_exists: bool
    comment: str | None


@dataclass(frozen=True)
class CreateExternalStage:
    """CREATE STAGE ... URL = 's3://bucket/path' [ENDPOINT = ...] CREDENTIALS = (...)."""

    parts: list[str]
    or_replace: bool
    if_not_exists: bool
    comment: str | None
    url: str
    endpoint: str | None
    region: str | None
    credentials: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class CreateComputePool:
    name: str
    if_not_exists: bool
    min_nodes: int
    max_nodes: int
    instance_family: str
    comment: str | None


@dataclass(frozen=True)
class Drop:
    kind: str  # DATABASE, SCHEMA, STAGE, TABLE, COMPUTE POOL
    parts: list[str]
    if_exists: bool


@dataclass(frozen=True)
class Use:
    kind: str  # DATABASE or SCHEMA
    parts: list[str]


@dataclass(frozen=True)
class ListFiles:
    stage: str
    pattern: str | None


@dataclass(frozen=True)
class RemoveFiles:
    stage: str
    pattern: str | None


@dataclass(frozen=True)
class Show:
    kind: str  # DATABASES, SCHEMAS, STAGES, TABLES, COMPUTE POOLS
    like: str | None
    in_parts: list[str] = field(default_factory=list)


Statement = (
    CreateNamespace | CreateExternalStage | CreateComputePool | Drop | Use | ListFiles | RemoveFiles | Show
)

SUPPORTED = (
    "CREATE [OR REPLACE] DATABASE|SCHEMA|STAGE [IF NOT EXISTS], CREATE COMPUTE POOL, "
    "DROP DATABASE|SCHEMA|STAGE|TABLE|COMPUTE POOL, USE DATABASE|SCHEMA, LIST|LS, REMOVE|RM, "
    "SHOW DATABASES|SCHEMAS|STAGES|TABLES|COMPUTE POOLS, SELECT, WITH"
)


def parse_statement(sql: str) -> Statement:
    cur = Cursor(sql)
    first = cur.peek()
    if first.kind is Kind.END:
        raise InvalidArgumentError("SQL compilation error: empty statement.")
    verb = first.text.upper() if first.kind is Kind.WORD else ""
    if verb == "CREATE":
        stmt: Statement = _create(cur)
    elif verb == "DROP":
        stmt = _drop(cur)
    elif verb == "USE":
        stmt = _use(cur)
    elif verb in ("LIST", "LS"):
        cur.next()
        stmt = ListFiles(_stage(cur), _pattern(cur))
    elif verb in ("REMOVE", "RM"):
        cur.next()
        stmt = RemoveFiles(_stage(cur), _pattern(cur))
    elif verb == "SHOW":
        stmt = _show(cur)
    else:
        raise _unsupported(sql)
    cur.end()
    return stmt


def _unsupported(sql: str) -> UnsupportedError:
    words = sql.strip().split()
    head = " ".join(words[:3]) if words else ""
    return UnsupportedError(
        f"Unsupported SQL statement '{head} ...'. runbatch runs these statements: {SUPPORTED}."
    )


def _create(cur: Cursor) -> Statement:
    cur.expect_keyword("CREATE")
    or_replace = cur.accept_keyword("OR", "REPLACE")
    if cur.accept_keyword("COMPUTE", "POOL"):
        if or_replace:
            cur.fail("CREATE OR REPLACE is not supported for compute pools")
        return _create_pool(cur)
    for kind in ("DATABASE", "SCHEMA", "STAGE"):
        if cur.accept_keyword(kind):
            break
    else:
        raise _unsupported(cur.sql)
    if_not_exists = cur.accept_keyword("IF", "NOT", "EXISTS")
    if or_replace and if_not_exists:
        cur.fail("OR REPLACE and IF NOT EXISTS cannot be combined")
    parts = cur.qualified_name(max_parts={"DATABASE": 1, "SCHEMA": 2, "STAGE": 3}[kind])
    props = _properties(cur)
    comment = _text(cur, props.pop("COMMENT", None))
    if kind == "STAGE":
        return _create_stage(cur, parts, or_replace, if_not_exists, comment, props)
    for key in props:
        if key not in ("DATA_RETENTION_TIME_IN_DAYS", "MAX_DATA_EXTENSION_TIME_IN_DAYS"):
            cur.fail(f"unsupported CREATE {kind} property {key}")
    return CreateNamespace(kind, parts, or_replace, if_not_exists, comment)


def _create_stage(
    cur: Cursor,
    parts: list[str],
    or_replace: bool,
    if_not_exists: bool,
    comment: str | None,
    props: dict[str, str | dict[str, str]],
) -> Statement:
    url = _text(cur, props.pop("URL", None))
    endpoint = _text(cur, props.pop("ENDPOINT", None))
    region = _text(cur, props.pop("REGION", None))
    credentials = props.pop("CREDENTIALS", None)
    if credentials is not None and not isinstance(credentials, dict):
        cur.fail("CREDENTIALS takes ( AWS_KEY_ID = '...' AWS_SECRET_KEY = '...' )")
    for key in props:
        if key not in ("DIRECTORY", "ENCRYPTION", "FILE_FORMAT", "COPY_OPTIONS", "STORAGE_INTEGRATION"):
            cur.fail(f"unsupported CREATE STAGE property {key}")
    if url is None:
        if credentials or endpoint:
            cur.fail("CREDENTIALS and ENDPOINT need URL = 's3://bucket/path'")
        return CreateNamespace("STAGE", parts, or_replace, if_not_exists, comment)
    return CreateExternalStage(
        parts, or_replace, if_not_exists, comment, url, endpoint, region, credentials or {}
    )


def _text(cur: Cursor, value: str | dict[str, str] | None) -> str | None:
    if isinstance(value, dict):
        cur.fail("expected a value, found a parenthesized list")
    return value


def _properties(cur: Cursor) -> dict[str, str | dict[str, str]]:
    """``KEY = value`` pairs; a parenthesized value (CREDENTIALS = (...)) is a nested group of pairs."""
    props: dict[str, str | dict[str, str]] = {}
    while cur.peek().kind is Kind.WORD:
        key = cur.next().text.upper()
        cur.expect_punct("=")
        if cur.accept_punct("("):
            group: dict[str, str] = {}
            while not cur.accept_punct(")"):
                cur.accept_punct(",")
                if cur.peek().kind is not Kind.WORD:
                    # Never echo the text here: it may be a secret of CREDENTIALS.
                    raise InvalidArgumentError(f"SQL compilation error: malformed {key} = ( ... ) list.")
                inner = cur.next().text.upper()
                if not cur.accept_punct("="):
                    raise InvalidArgumentError(f"SQL compilation error: malformed {key} = ( ... ) list.")
                group[inner] = cur.value()
            props[key] = group
        else:
            props[key] = cur.value()
    return props


def _create_pool(cur: Cursor) -> CreateComputePool:
    if_not_exists = cur.accept_keyword("IF", "NOT", "EXISTS")
    name = cur.identifier()
    props = {k: v for k, v in _properties(cur).items() if isinstance(v, str)}
    if "INSTANCE_FAMILY" not in props:
        cur.fail("CREATE COMPUTE POOL needs INSTANCE_FAMILY = <family>")
    allowed = {
        "MIN_NODES",
        "MAX_NODES",
        "INSTANCE_FAMILY",
        "COMMENT",
        "AUTO_RESUME",
        "AUTO_SUSPEND_SECS",
        "INITIALLY_SUSPENDED",
    }
    unknown = sorted(set(props) - allowed)
    if unknown:
        cur.fail(f"unsupported CREATE COMPUTE POOL property {unknown[0]}")
    try:
        min_nodes = int(props.get("MIN_NODES", "1"))
        max_nodes = int(props.get("MAX_NODES", props.get("MIN_NODES", "1")))
    except ValueError:
        raise InvalidArgumentError(
            "SQL compilation error: MIN_NODES and MAX_NODES must be integers."
        ) from None
    return CreateComputePool(
        name, if_not_exists, min_nodes, max_nodes, props["INSTANCE_FAMILY"].upper(), props.get("COMMENT")
    )


def _drop(cur: Cursor) -> Drop:
    cur.expect_keyword("DROP")
    if cur.accept_keyword("COMPUTE", "POOL"):
        kind, max_parts = "COMPUTE POOL", 1
    else:
        for kind in ("DATABASE", "SCHEMA", "STAGE", "TABLE"):
            if cur.accept_keyword(kind):
                break
        else:
            raise _unsupported(cur.sql)
        max_parts = {"DATABASE": 1, "SCHEMA": 2, "STAGE": 3, "TABLE": 3}[kind]
    if_exists = cur.accept_keyword("IF", "EXISTS")
    parts = cur.qualified_name(max_parts)
    cur.accept_keyword("CASCADE") or cur.accept_keyword("RESTRICT")
    return Drop(kind, parts, if_exists)


def _use(cur: Cursor) -> Use:
    cur.expect_keyword("USE")
    if cur.accept_keyword("SCHEMA"):
        return Use("SCHEMA", cur.qualified_name(2))
    cur.accept_keyword("DATABASE")
    return Use("DATABASE", cur.qualified_name(1))


def _stage(cur: Cursor) -> str:
    tok = cur.next()
    if tok.kind is Kind.STAGE:
        return tok.value
    if tok.kind is Kind.STRING and tok.value.startswith("@"):
        return tok.value
    cur.fail("expected a stage path such as @MY_STAGE/folder/", tok)


def _pattern(cur: Cursor) -> str | None:
    if cur.accept_keyword("PATTERN"):
        cur.expect_punct("=")
        return cur.string()
    return None


def _show(cur: Cursor) -> Show:
    cur.expect_keyword("SHOW")
    cur.accept_keyword("TERSE")
    if cur.accept_keyword("COMPUTE", "POOLS"):
        kind = "COMPUTE POOLS"
    else:
        for kind in ("DATABASES", "SCHEMAS", "STAGES", "TABLES"):
            if cur.accept_keyword(kind):
                break
        else:
            raise _unsupported(cur.sql)
    like = None
    if cur.accept_keyword("LIKE"):
        like = cur.string()
    in_parts: list[str] = []
    if cur.accept_keyword("IN"):
        cur.accept_keyword("DATABASE") or cur.accept_keyword("SCHEMA") or cur.accept_keyword("ACCOUNT")
        if cur.peek().kind in (Kind.WORD, Kind.QUOTED):
            in_parts = cur.qualified_name(2)
    return Show(kind, like, in_parts)
