"""The SQL of image repositories: CREATE / DROP / SHOW IMAGE REPOSITORIES, SHOW IMAGES IN IMAGE REPOSITORY."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import qualified
from runbatch.wire.resources import SqlRequest, SqlResult
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import ImageRepositoryRow
from server.image_registry.client import list_images
from server.spcs import image_repositories as repos
from server.sql.tokens import Cursor, Kind

__all__ = [
    "IMAGE_COLUMNS",
    "REPOSITORY_COLUMNS",
    "is_image_repository_statement",
    "repository_listing",
    "run_image_repository_statement",
]

_DETECT = re.compile(
    r"^\s*(CREATE\s+(OR\s+REPLACE\s+)?IMAGE\s+REPOSITORY\b|DROP\s+IMAGE\s+REPOSITORY\b"
    r"|SHOW\s+IMAGE\s+REPOSITORIES\b|SHOW\s+IMAGES\s+IN\s+IMAGE\s+REPOSITORY\b)",
    re.IGNORECASE,
)

# Snowflake's columns of SHOW IMAGE REPOSITORIES and SHOW IMAGES IN IMAGE REPOSITORY.
REPOSITORY_COLUMNS = [
    "created_on",
    "name",
    "database_name",
    "schema_name",
    "repository_url",
    "owner",
    "owner_role_type",
    "comment",
    "privatelink_repository_url",
    "encryption",
]
IMAGE_COLUMNS = ["created_on", "image_name", "tags", "digest", "image_path"]


@dataclass(frozen=True)
class CreateRepository:
    name: list[str]
    or_replace: bool
    if_not_exists: bool
    comment: str | None


@dataclass(frozen=True)
class DropRepository:
    name: list[str]
    if_exists: bool


@dataclass(frozen=True)
class ShowRepositories:
    like: str | None
    in_parts: list[str] | None  # None: the current database; []: the account


@dataclass(frozen=True)
class ShowImages:
    name: list[str]


Statement = CreateRepository | DropRepository | ShowRepositories | ShowImages


def is_image_repository_statement(sql: str) -> bool:
    return _DETECT.match(sql) is not None


def parse(sql: str) -> Statement:
    cur = Cursor(sql)
    stmt: Statement
    if cur.accept_keyword("CREATE"):
        or_replace = cur.accept_keyword("OR", "REPLACE")
        cur.expect_keyword("IMAGE", "REPOSITORY")
        if_not_exists = cur.accept_keyword("IF", "NOT", "EXISTS")
        name = cur.qualified_name(3)
        comment: str | None = None
        while cur.peek().kind is not Kind.END and not (
            cur.peek().kind is Kind.PUNCT and cur.peek().text == ";"
        ):
            if cur.accept_keyword("COMMENT"):
                cur.expect_punct("=")
                comment = cur.string()
            elif cur.accept_keyword("ENCRYPTION"):
                # Snowflake's server-side encryption choice; the registry's storage is this host's disk.
                cur.expect_punct("=")
                cur.expect_punct("(")
                while not cur.accept_punct(")"):
                    if cur.peek().kind is Kind.END:
                        cur.fail("expected ')' closing ENCRYPTION = (...)")
                    cur.next()
            else:
                cur.fail("expected COMMENT = '...' or ENCRYPTION = (...)")
        stmt = CreateRepository(name, or_replace, if_not_exists, comment)
    elif cur.accept_keyword("DROP", "IMAGE", "REPOSITORY"):
        if_exists = cur.accept_keyword("IF", "EXISTS")
        stmt = DropRepository(cur.qualified_name(3), if_exists)
    elif cur.accept_keyword("SHOW", "IMAGE", "REPOSITORIES"):
        like = cur.string() if cur.accept_keyword("LIKE") else None
        in_parts: list[str] | None = None
        if cur.accept_keyword("IN"):
            if cur.accept_keyword("ACCOUNT"):
                in_parts = []
            elif cur.accept_keyword("DATABASE"):
                in_parts = cur.qualified_name(1)
            else:
                cur.accept_keyword("SCHEMA")
                in_parts = cur.qualified_name(2)
                if len(in_parts) == 1:
                    in_parts = ["", in_parts[0]]  # a schema of the current database
        stmt = ShowRepositories(like, in_parts)
    else:
        cur.expect_keyword("SHOW", "IMAGES", "IN", "IMAGE", "REPOSITORY")
        stmt = ShowImages(cur.qualified_name(3))
    cur.end()
    return stmt


def _names(parts: list[str], database: str | None, schema: str | None) -> tuple[str, str, str]:
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2 and database is not None:
        return database, parts[0], parts[1]
    if len(parts) == 1 and database is not None and schema is not None:
        return database, schema, parts[0]
    raise InvalidArgumentError(
        f"Cannot resolve image repository {qualified(*parts)}: there is no current database and schema. Qualify "
        "the name (DB.SCHEMA.NAME) or run USE SCHEMA first."
    )


def repository_listing(session: Session, cp: ControlPlane, row: ImageRepositoryRow) -> list[object]:
    schema = row.schema
    return [
        row.created_on.isoformat(),
        row.name,
        schema.database.name,
        schema.name,
        repos.repository_url(cp, row),
        repos.owner_role(session, row),
        "ROLE",
        row.comment or "",
        "",
        "SNOWFLAKE_SSE",
    ]


def run_image_repository_statement(
    session: Session, cp: ControlPlane, user: Principal, body: SqlRequest
) -> SqlResult:
    """One image-repository statement; it commits what it changes."""
    stmt = parse(body.sql)
    database, schema = body.database, body.schema_

    def result(columns: list[str], rows: list[list[object]]) -> SqlResult:
        return SqlResult(columns=columns, rows=rows, database=database, schema=schema)

    if isinstance(stmt, CreateRepository):
        db, sch, name = _names(stmt.name, database, schema)
        _, created = repos.create_repository(
            session,
            cp,
            user,
            database=db,
            schema=sch,
            name=name,
            or_replace=stmt.or_replace,
            if_not_exists=stmt.if_not_exists,
            comment=stmt.comment,
        )
        session.commit()
        if not created:
            return result(["status"], [[f"{name} already exists, statement succeeded."]])
        return result(["status"], [[f"Image Repository {name} successfully created."]])
    if isinstance(stmt, DropRepository):
        db, sch, name = _names(stmt.name, database, schema)
        dropped = repos.drop_repository(session, cp, user, db, sch, name, if_exists=stmt.if_exists)
        session.commit()
        text = f"{name} successfully dropped." if dropped else "Drop statement executed successfully."
        return result(["status"], [[text]])
    if isinstance(stmt, ShowRepositories):
        in_db: str | None
        in_schema: str | None = None
        if stmt.in_parts is None:
            in_db = database
        elif not stmt.in_parts:
            in_db = None
        else:
            in_db = stmt.in_parts[0] or database
            in_schema = stmt.in_parts[1] if len(stmt.in_parts) > 1 else None
            if in_db is None:
                raise InvalidArgumentError(
                    "SHOW IMAGE REPOSITORIES IN SCHEMA needs a current database or a qualified DB.SCHEMA."
                )
        pattern = (
            re.compile(fnmatch.translate(stmt.like.replace("%", "*").replace("_", "?")), re.I)
            if stmt.like
            else None
        )
        rows = [
            repository_listing(session, cp, r)
            for r in repos.list_repositories(session, user, in_db, in_schema)
            if pattern is None or pattern.fullmatch(r.name)
        ]
        return result(REPOSITORY_COLUMNS, rows)
    db, sch, name = _names(stmt.name, database, schema)
    row = repos.get_repository(session, db, sch, name)
    repos.require_pull(session, user, row)
    schema_row = row.schema
    path = repos.repository_path(schema_row.database.name, schema_row.name, row.name)
    # The registry may be slow: end the transaction (and give back its connection) before asking it.
    session.commit()
    session.close()
    images = list_images(
        cp.settings.home,
        registry=repos.registry_host(cp),
        service=cp.settings.registry_service,
        repository=path,
    )
    return result(IMAGE_COLUMNS, [[i.created_on, i.name, i.tag, i.digest, i.path] for i in images])
