"""Parse Snowflake control statements into typed statement objects."""

from __future__ import annotations

from dataclasses import dataclass, field

from runbatch.errors import InvalidArgumentError, UnsupportedError
from runbatch.identifiers import resolve_identifier
from server.auth.access_sql import AccessStatement, is_access_statement, parse_access
from server.file_formats.options import RawOptions, read_options
from server.sql.tokens import Cursor, Kind

__all__ = [
    "AlterModel",
    "CreateComputePool",
    "CreateExternalStage",
    "CreateFileFormat",
    "CreateNamespace",
    "Describe",
    "Drop",
    "ListFiles",
    "RemoveFiles",
    "Show",
    "ShowInModel",
    "ShowScoped",
    "Statement",
    "TagAssignment",
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
class CreateFileFormat:
    """CREATE [OR REPLACE] FILE FORMAT [IF NOT EXISTS] [db.][schema.]name TYPE = ... [options]."""

    parts: list[str]
    or_replace: bool
    if_not_exists: bool
    comment: str | None
    options: RawOptions


@dataclass(frozen=True)
class Drop:
    kind: str  # DATABASE, SCHEMA, STAGE, TABLE, MODEL, COMPUTE POOL
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


@dataclass(frozen=True)
class ShowScoped:
    """SHOW MODELS | JOB SERVICES [LIKE '..'] [IN ...] [STARTS WITH '..'] [LIMIT n].

    ``scope`` None is Snowflake's default: the current database, else the account.
    """

    kind: str  # MODELS, JOB SERVICES
    like: str | None
    scope: str | None = None  # ACCOUNT, DATABASE, SCHEMA, COMPUTE POOL
    in_parts: list[str] = field(default_factory=list)
    starts_with: str | None = None
    limit: int | None = None


@dataclass(frozen=True)
class ShowInModel:
    """SHOW VERSIONS [LIKE '..'] IN MODEL m, SHOW FUNCTIONS [LIKE '..'] IN MODEL m [VERSION v]."""

    kind: str  # VERSIONS, FUNCTIONS
    like: str | None
    model: list[str]
    version: str | None = None


@dataclass(frozen=True)
class Describe:
    kind: str  # DATABASE, SCHEMA, STAGE, TABLE, MODEL, COMPUTE POOL, JOB SERVICE
    parts: list[str]


@dataclass(frozen=True)
class TagAssignment:
    parts: list[str]
    value: str | None  # None in UNSET TAG


@dataclass(frozen=True)
class AlterModel:
    """ALTER MODEL [IF EXISTS] m <action>; COMMENT ON MODEL m IS '..' is a SET of COMMENT."""

    parts: list[str]
    if_exists: bool
    action: str  # SET, SET TAG, UNSET TAG, SET ALIAS, UNSET ALIAS, MODIFY VERSION, DROP VERSION
    version: str | None = None
    properties: dict[str, str] = field(default_factory=dict)  # COMMENT, DEFAULT_VERSION, ALIAS, METADATA
    tags: list[TagAssignment] = field(default_factory=list)


Statement = (
    CreateNamespace
    | CreateExternalStage
    | CreateComputePool
    | CreateFileFormat
    | Drop
    | Use
    | ListFiles
    | RemoveFiles
    | Show
    | ShowScoped
    | ShowInModel
    | Describe
    | AlterModel
    | AccessStatement
)

SUPPORTED = (
    "CREATE [OR REPLACE] DATABASE|SCHEMA|STAGE [IF NOT EXISTS], CREATE COMPUTE POOL, "
    "DROP DATABASE|SCHEMA|STAGE|TABLE|MODEL|COMPUTE POOL, USE DATABASE|SCHEMA, LIST|LS, REMOVE|RM, "
    "SHOW DATABASES|SCHEMAS|STAGES|TABLES|COMPUTE POOLS|MODELS|JOB SERVICES, "
    "SHOW VERSIONS|FUNCTIONS IN MODEL, DESCRIBE|DESC DATABASE|SCHEMA|STAGE|TABLE|MODEL|COMPUTE POOL|"
    "[JOB] SERVICE, ALTER MODEL, COMMENT ON MODEL, SELECT, WITH, "
    "CREATE|DROP FILE FORMAT, SHOW FILE FORMATS, COPY INTO @stage, "
    "CREATE|DROP USER|ROLE, ALTER USER, GRANT|REVOKE, SHOW USERS|ROLES|GRANTS|FUTURE GRANTS"
)


def parse_statement(sql: str) -> Statement:
    cur = Cursor(sql)
    first = cur.peek()
    if first.kind is Kind.END:
        raise InvalidArgumentError("SQL compilation error: empty statement.")
    verb = first.text.upper() if first.kind is Kind.WORD else ""
    if is_access_statement(cur):
        stmt: Statement = parse_access(cur)
    elif verb == "CREATE":
        stmt = _create(cur)
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
    elif verb == "SHOW" and _show_target(cur) in ("VERSIONS", "FUNCTIONS"):
        stmt = _show_in_model(cur)
    elif verb == "SHOW" and _show_target(cur) in ("MODELS", "JOB"):
        stmt = _show_scoped(cur)
    elif verb == "SHOW":
        stmt = _show(cur)
    elif verb in ("DESCRIBE", "DESC"):
        stmt = _describe(cur)
    elif verb == "ALTER" and cur.at_keyword("ALTER", "MODEL"):
        stmt = _alter_model(cur)
    elif cur.at_keyword("COMMENT", "ON", "MODEL") or cur.at_keyword("COMMENT", "IF", "EXISTS", "ON", "MODEL"):
        stmt = _comment_on_model(cur)
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
    if cur.accept_keyword("FILE", "FORMAT"):
        return _create_file_format(cur, or_replace)
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


def _create_file_format(cur: Cursor, or_replace: bool) -> CreateFileFormat:
    if_not_exists = cur.accept_keyword("IF", "NOT", "EXISTS")
    if or_replace and if_not_exists:
        cur.fail("OR REPLACE and IF NOT EXISTS cannot be combined")
    parts = cur.qualified_name(3)
    options = read_options(cur)
    comment = options.pop("COMMENT", None)
    if isinstance(comment, list):
        cur.fail("COMMENT takes a string")
    return CreateFileFormat(parts, or_replace, if_not_exists, comment, options)


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
    elif cur.accept_keyword("FILE", "FORMAT"):
        kind, max_parts = "FILE FORMAT", 3
    else:
        for kind in ("DATABASE", "SCHEMA", "STAGE", "TABLE", "MODEL"):
            if cur.accept_keyword(kind):
                break
        else:
            raise _unsupported(cur.sql)
        max_parts = {"DATABASE": 1, "SCHEMA": 2, "STAGE": 3, "TABLE": 3, "MODEL": 3}[kind]
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
    elif cur.accept_keyword("FILE", "FORMATS"):
        kind = "FILE FORMATS"
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


# -- models, job services and DESCRIBE -------------------------------------------------------------


def _show_target(cur: Cursor) -> str:
    """The object word after SHOW [TERSE], upper case."""
    ahead = 2 if cur.at_keyword("SHOW", "TERSE") else 1
    tok = cur.peek(ahead)
    return tok.text.upper() if tok.kind is Kind.WORD else ""


def _like(cur: Cursor) -> str | None:
    return cur.string() if cur.accept_keyword("LIKE") else None


def _optional_name(cur: Cursor, max_parts: int) -> list[str]:
    """A name where one may follow (IN DATABASE [db]); the clauses after it are not names."""
    tok = cur.peek()
    if tok.kind is Kind.QUOTED or (
        tok.kind is Kind.WORD and not (cur.at_keyword("STARTS") or cur.at_keyword("LIMIT"))
    ):
        return cur.qualified_name(max_parts)
    return []


def _show_scoped(cur: Cursor) -> ShowScoped:
    cur.expect_keyword("SHOW")
    cur.accept_keyword("TERSE")
    if cur.accept_keyword("MODELS"):
        kind = "MODELS"
    else:
        cur.expect_keyword("JOB", "SERVICES")
        kind = "JOB SERVICES"
    like = _like(cur)
    scope: str | None = None
    in_parts: list[str] = []
    if cur.accept_keyword("IN"):
        if cur.accept_keyword("ACCOUNT"):
            scope = "ACCOUNT"
        elif cur.accept_keyword("DATABASE"):
            scope, in_parts = "DATABASE", _optional_name(cur, 1)
        elif cur.accept_keyword("SCHEMA"):
            scope, in_parts = "SCHEMA", _optional_name(cur, 2)
        elif kind == "JOB SERVICES" and cur.accept_keyword("COMPUTE", "POOL"):
            scope, in_parts = "COMPUTE POOL", [cur.identifier()]
        else:
            scope, in_parts = "SCHEMA", cur.qualified_name(2)
    starts_with = cur.string() if cur.accept_keyword("STARTS", "WITH") else None
    limit: int | None = None
    if cur.accept_keyword("LIMIT"):
        tok = cur.next()
        if tok.kind is not Kind.NUMBER or not tok.text.isdigit():
            cur.fail("LIMIT takes a whole number of rows", tok)
        limit = int(tok.text)
        if cur.at_keyword("FROM"):
            cur.fail("LIMIT ... FROM is not supported; filter with LIKE or STARTS WITH")
    return ShowScoped(kind, like, scope, in_parts, starts_with, limit)


def _show_in_model(cur: Cursor) -> ShowInModel:
    cur.expect_keyword("SHOW")
    cur.accept_keyword("TERSE")
    kind = cur.next().text.upper()
    like = _like(cur)
    cur.expect_keyword("IN", "MODEL")
    model = cur.qualified_name(3)
    version = None
    if kind == "FUNCTIONS" and cur.accept_keyword("VERSION"):
        version = cur.identifier()
    return ShowInModel(kind, like, model, version)


def _describe(cur: Cursor) -> Describe:
    cur.next()
    if cur.accept_keyword("COMPUTE", "POOL"):
        kind, max_parts = "COMPUTE POOL", 1
    elif cur.accept_keyword("JOB", "SERVICE") or cur.accept_keyword("SERVICE"):
        kind, max_parts = "JOB SERVICE", 3
    else:
        for kind in ("DATABASE", "SCHEMA", "STAGE", "TABLE", "MODEL"):
            if cur.accept_keyword(kind):
                break
        else:
            raise _unsupported(cur.sql)
        max_parts = {"DATABASE": 1, "SCHEMA": 2, "STAGE": 3, "TABLE": 3, "MODEL": 3}[kind]
    parts = cur.qualified_name(max_parts)
    if kind == "TABLE" and cur.accept_keyword("TYPE"):
        cur.expect_punct("=")
        if not cur.accept_keyword("COLUMNS"):
            cur.fail("DESCRIBE TABLE supports TYPE = COLUMNS only")
    return Describe(kind, parts)


def _version_name(cur: Cursor) -> str:
    """A version or alias name: an identifier, or a string holding one (DEFAULT_VERSION = 'v2')."""
    tok = cur.peek()
    if tok.kind is not Kind.STRING:
        return cur.identifier()
    cur.next()
    try:
        return resolve_identifier(tok.value)
    except InvalidArgumentError:
        cur.fail("expected a version or alias name", tok)


def _tags(cur: Cursor, *, with_values: bool) -> list[TagAssignment]:
    tags: list[TagAssignment] = []
    while True:
        parts = cur.qualified_name(3)
        value = None
        if with_values:
            cur.expect_punct("=")
            value = cur.string()
        tags.append(TagAssignment(parts, value))
        if not cur.accept_punct(","):
            return tags


def _model_properties(cur: Cursor, allowed: dict[str, bool], what: str) -> dict[str, str]:
    """``KEY = value`` pairs of ``allowed`` keys (True: the value names a version or alias)."""
    props: dict[str, str] = {}
    while cur.peek().kind is Kind.WORD:
        tok = cur.next()
        key = tok.text.upper()
        if key not in allowed:
            cur.fail(f"unsupported {what} property {key}", tok)
        cur.expect_punct("=")
        props[key] = _version_name(cur) if allowed[key] else cur.string()
        cur.accept_punct(",")
    if not props:
        cur.fail(f"{what} needs " + " or ".join(f"{k} = ..." for k in allowed))
    return props


def _alter_model(cur: Cursor) -> AlterModel:
    cur.expect_keyword("ALTER", "MODEL")
    if_exists = cur.accept_keyword("IF", "EXISTS")
    parts = cur.qualified_name(3)
    if cur.accept_keyword("SET", "TAG"):
        return AlterModel(parts, if_exists, "SET TAG", tags=_tags(cur, with_values=True))
    if cur.accept_keyword("UNSET", "TAG"):
        return AlterModel(parts, if_exists, "UNSET TAG", tags=_tags(cur, with_values=False))
    if cur.accept_keyword("SET"):
        props = _model_properties(cur, {"COMMENT": False, "DEFAULT_VERSION": True}, "ALTER MODEL ... SET")
        return AlterModel(parts, if_exists, "SET", properties=props)
    if cur.accept_keyword("VERSION"):
        version = cur.identifier()
        if cur.accept_keyword("UNSET", "ALIAS"):
            return AlterModel(parts, if_exists, "UNSET ALIAS", version)
        if not cur.accept_keyword("SET", "ALIAS"):
            cur.fail("expected SET ALIAS = <alias> or UNSET ALIAS")
        cur.expect_punct("=")
        return AlterModel(parts, if_exists, "SET ALIAS", version, {"ALIAS": _version_name(cur)})
    if cur.accept_keyword("MODIFY", "VERSION"):
        version = cur.identifier()
        cur.expect_keyword("SET")
        props = _model_properties(cur, {"COMMENT": False, "METADATA": False}, "MODIFY VERSION ... SET")
        return AlterModel(parts, if_exists, "MODIFY VERSION", version, props)
    if cur.accept_keyword("DROP", "VERSION"):
        return AlterModel(parts, if_exists, "DROP VERSION", cur.identifier())
    if cur.at_keyword("RENAME"):
        raise UnsupportedError(
            "ALTER MODEL ... RENAME TO is not supported: runbatch cannot rename a model. Log its versions "
            "under the new name (Registry.log_model(model_version, model_name=...)), then DROP MODEL the old one."
        )
    if cur.at_keyword("ADD") or cur.at_keyword("COMMIT"):
        raise UnsupportedError(
            "ALTER MODEL ... ADD VERSION is not supported: add versions with Registry.log_model."
        )
    cur.fail("expected SET, SET TAG, UNSET TAG, VERSION, MODIFY VERSION or DROP VERSION")


def _comment_on_model(cur: Cursor) -> AlterModel:
    cur.expect_keyword("COMMENT")
    if_exists = cur.accept_keyword("IF", "EXISTS")
    cur.expect_keyword("ON", "MODEL")
    parts = cur.qualified_name(3)
    cur.expect_keyword("IS")
    return AlterModel(parts, if_exists, "SET", properties={"COMMENT": cur.string()})
