"""Execute parsed control statements against the services. The caller commits, then runs ``after_commit``."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import qualified
from runbatch.stage.paths import parse_stage_path
from runbatch.stage.storage import Storage
from runbatch.wire.resources import SqlResult
from server.auth.tokens import Principal
from server.resources import service as resources
from server.secrets import SecretBox
from server.sql.statements import (
    CreateComputePool,
    CreateExternalStage,
    CreateNamespace,
    Drop,
    ListFiles,
    RemoveFiles,
    Show,
    Use,
    parse_statement,
)
from server.stages import service as stages
from server.tables import service as tables

__all__ = ["Execution", "execute_sql"]


@dataclass
class Execution:
    result: SqlResult
    after_commit: list[Callable[[], None]] = field(default_factory=list)


@dataclass
class _Context:
    session: Session
    storage: Storage
    secrets: SecretBox
    principal: Principal
    database: str | None
    schema: str | None


def execute_sql(
    session: Session,
    storage: Storage,
    secrets: SecretBox,
    principal: Principal,
    sql: str,
    *,
    database: str | None,
    schema: str | None,
) -> Execution:
    stmt = parse_statement(sql)
    ctx = _Context(session, storage, secrets, principal, database, schema)
    return _HANDLERS[type(stmt)](ctx, stmt)


def _status(ctx: _Context, message: str, after: list[Callable[[], None]] | None = None) -> Execution:
    return Execution(
        SqlResult(columns=["status"], rows=[[message]], database=ctx.database, schema=ctx.schema), after or []
    )


def _scope(ctx: _Context, parts: list[str], levels: int) -> list[str]:
    """Qualify ``parts`` to ``levels`` names with the current database (and schema)."""
    missing = levels - len(parts)
    if missing <= 0:
        return parts
    needed = [ctx.database, ctx.schema][:missing] if levels == 3 else [ctx.database]
    if any(p is None for p in needed):
        what = "database" if ctx.database is None else "schema"
        raise InvalidArgumentError(
            f"Cannot resolve {qualified(*parts)}: there is no current {what}. Qualify the name "
            "(DB.SCHEMA.NAME) or run USE DATABASE / USE SCHEMA first."
        )
    prefix = [p for p in needed if p is not None]
    return [*prefix[:missing], *parts]


def _create(ctx: _Context, stmt: CreateNamespace) -> Execution:
    owner = ctx.principal.name
    after: list[Callable[[], None]] = []
    kwargs: dict[str, Any] = {
        "owner": owner,
        "comment": stmt.comment,
        "if_not_exists": stmt.if_not_exists,
        "or_replace": stmt.or_replace,
    }
    if stmt.kind == "DATABASE":
        (name,) = stmt.parts
        _, created = resources.create_database(ctx.session, name, **kwargs)
        if created and stmt.or_replace:
            after.append(lambda: _purge(ctx.storage, *resources.storage_prefixes(name)))
        if created:
            # As in Snowflake, creating a database makes it (and its PUBLIC schema) current.
            ctx.database, ctx.schema = name, "PUBLIC"
        label, shown = "Database", qualified(name)
    elif stmt.kind == "SCHEMA":
        db, name = _scope(ctx, stmt.parts, 2)
        _, created = resources.create_schema(ctx.session, db, name, **kwargs)
        if created and stmt.or_replace:
            after.append(lambda: _purge(ctx.storage, *resources.storage_prefixes(db, name)))
        if created:
            ctx.database, ctx.schema = db, name
        label, shown = "Schema", qualified(name)
    else:
        db, sch, name = _scope(ctx, stmt.parts, 3)
        _, created = stages.create_stage(ctx.session, db, sch, name, **kwargs)
        if created and stmt.or_replace:
            after.append(lambda: _purge(ctx.storage, stages.stage_root_key(db, sch, name)))
        label, shown = "Stage area", qualified(name)
    if not created:
        return _status(ctx, f"{shown} already exists, statement succeeded.")
    return _status(ctx, f"{label} {shown} successfully created.", after)


def _purge(storage: Storage, *keys: str) -> None:
    for key in keys:
        storage.delete_tree(key)


def _create_external_stage(ctx: _Context, stmt: CreateExternalStage) -> Execution:
    db, sch, name = _scope(ctx, stmt.parts, 3)
    _, created = stages.create_stage(
        ctx.session,
        db,
        sch,
        name,
        owner=ctx.principal.name,
        comment=stmt.comment,
        if_not_exists=stmt.if_not_exists,
        or_replace=stmt.or_replace,
        url=stmt.url,
        endpoint=stmt.endpoint,
        region=stmt.region,
        credentials=stmt.credentials,
        secrets=ctx.secrets,
    )
    if not created:
        return _status(ctx, f"{qualified(name)} already exists, statement succeeded.")
    return _status(ctx, f"Stage area {qualified(name)} successfully created.")


def _create_pool(ctx: _Context, stmt: CreateComputePool) -> Execution:
    _, created = resources.create_compute_pool(
        ctx.session,
        stmt.name,
        owner=ctx.principal.name,
        instance_family=stmt.instance_family,
        min_nodes=stmt.min_nodes,
        max_nodes=stmt.max_nodes,
        comment=stmt.comment,
        if_not_exists=stmt.if_not_exists,
    )
    if not created:
        return _status(ctx, f"{qualified(stmt.name)} already exists, statement succeeded.")
    return _status(ctx, f"Compute Pool {qualified(stmt.name)} successfully created.")


def _drop(ctx: _Context, stmt: Drop) -> Execution:
    after: list[Callable[[], None]] = []
    if stmt.kind == "DATABASE":
        (name,) = stmt.parts
        dropped = resources.drop_database(ctx.session, name, if_exists=stmt.if_exists)
        keys = resources.storage_prefixes(name)
        if ctx.database == name:
            ctx.database, ctx.schema = None, None
    elif stmt.kind == "SCHEMA":
        db, name = _scope(ctx, stmt.parts, 2)
        dropped = resources.drop_schema(ctx.session, db, name, if_exists=stmt.if_exists)
        keys = resources.storage_prefixes(db, name)
        if (ctx.database, ctx.schema) == (db, name):
            ctx.schema = None
    elif stmt.kind == "STAGE":
        db, sch, name = _scope(ctx, stmt.parts, 3)
        dropped = stages.drop_stage(ctx.session, db, sch, name, if_exists=stmt.if_exists)
        keys = [stages.stage_root_key(db, sch, name)]
    elif stmt.kind == "TABLE":
        db, sch, name = _scope(ctx, stmt.parts, 3)
        location = tables.drop_table(ctx.session, db, sch, name, if_exists=stmt.if_exists)
        dropped, keys = location is not None, [location] if location is not None else []
    else:
        (name,) = stmt.parts
        dropped = resources.drop_compute_pool(ctx.session, name, if_exists=stmt.if_exists)
        keys = []
    if not dropped:
        return _status(
            ctx, "Drop statement executed successfully (" + qualified(stmt.parts[-1]) + " already dropped)."
        )
    if keys:
        after.append(lambda: _purge(ctx.storage, *keys))
    return _status(ctx, f"{qualified(stmt.parts[-1])} successfully dropped.", after)


def _use(ctx: _Context, stmt: Use) -> Execution:
    if stmt.kind == "DATABASE":
        (name,) = stmt.parts
        resources.get_database(ctx.session, name)
        ctx.database, ctx.schema = name, "PUBLIC"
        try:
            resources.get_schema(ctx.session, name, "PUBLIC")
        except InvalidArgumentError:
            ctx.schema = None
    else:
        db, name = _scope(ctx, stmt.parts, 2)
        resources.get_schema(ctx.session, db, name)
        ctx.database, ctx.schema = db, name
    return _status(ctx, "Statement executed successfully.")


def _list(ctx: _Context, stmt: ListFiles) -> Execution:
    path = parse_stage_path(stmt.stage, database=ctx.database, schema=ctx.schema)
    resolved = stages.resolve_stage_path(ctx.session, ctx.storage, path, ctx.secrets)
    rows = stages.list_files(resolved, prefix_is_dir=stmt.stage.endswith("/"), pattern=stmt.pattern)
    return Execution(
        SqlResult(
            columns=["name", "size", "md5", "last_modified"],
            rows=[[r.name, r.size, r.md5, r.last_modified] for r in rows],
            database=ctx.database,
            schema=ctx.schema,
        )
    )


def _remove(ctx: _Context, stmt: RemoveFiles) -> Execution:
    path = parse_stage_path(stmt.stage, database=ctx.database, schema=ctx.schema)
    resolved = stages.resolve_stage_path(ctx.session, ctx.storage, path, ctx.secrets)
    rows = stages.list_files(
        resolved, prefix_is_dir=stmt.stage.endswith("/"), pattern=stmt.pattern, with_md5=False
    )
    for row in rows:
        ctx.storage.delete_file(resolved.key_for(row.name.split("/", 1)[1]))
    return Execution(
        SqlResult(
            columns=["name", "result"],
            rows=[[r.name, "removed"] for r in rows],
            database=ctx.database,
            schema=ctx.schema,
        )
    )


def _like(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    return re.compile(fnmatch.translate(pattern.replace("%", "*").replace("_", "?")), re.IGNORECASE)


def _ts(value: datetime) -> str:
    return value.isoformat()


def _show(ctx: _Context, stmt: Show) -> Execution:
    like = _like(stmt.like)
    columns: list[str]
    rows: list[list[Any]]
    if stmt.kind == "DATABASES":
        columns = ["created_on", "name", "is_current", "owner", "comment"]
        rows = [
            [_ts(d.created_on), d.name, "Y" if d.name == ctx.database else "N", d.owner, d.comment or ""]
            for d in resources.list_databases(ctx.session)
        ]
    elif stmt.kind == "SCHEMAS":
        db = stmt.in_parts[0] if stmt.in_parts else ctx.database
        if db is None:
            raise InvalidArgumentError("SHOW SCHEMAS needs a current database or IN DATABASE <name>.")
        columns = ["created_on", "name", "is_current", "database_name", "owner", "comment"]
        rows = [
            [
                _ts(s.created_on),
                s.name,
                "Y" if (db, s.name) == (ctx.database, ctx.schema) else "N",
                db,
                s.owner,
                s.comment or "",
            ]
            for s in resources.list_schemas(ctx.session, db)
        ]
    elif stmt.kind == "STAGES":
        db, sch = _scope(ctx, stmt.in_parts, 2) if stmt.in_parts else (ctx.database, ctx.schema)
        if db is None or sch is None:
            raise InvalidArgumentError("SHOW STAGES needs a current schema or IN SCHEMA <db>.<schema>.")
        columns = [
            "created_on",
            "name",
            "database_name",
            "schema_name",
            "url",
            "has_credentials",
            "owner",
            "comment",
            "region",
            "type",
            "endpoint",
        ]
        rows = [
            [
                _ts(s.created_on),
                s.name,
                db,
                sch,
                s.url or "",
                "true" if s.credentials else "false",
                s.owner,
                s.comment or "",
                s.region or "",
                "EXTERNAL" if s.url else "INTERNAL",
                s.endpoint or "",
            ]
            for s in stages.list_stages(ctx.session, db, sch)
        ]
    elif stmt.kind == "TABLES":
        db, sch = _scope(ctx, stmt.in_parts, 2) if stmt.in_parts else (ctx.database, ctx.schema)
        if db is None or sch is None:
            raise InvalidArgumentError("SHOW TABLES needs a current schema or IN SCHEMA <db>.<schema>.")
        columns = [
            "created_on",
            "name",
            "database_name",
            "schema_name",
            "kind",
            "comment",
            "rows",
            "bytes",
            "owner",
        ]
        rows = [
            [_ts(t.created_on), t.name, db, sch, "TABLE", t.comment or "", t.row_count, t.bytes, t.owner]
            for t in tables.list_tables(ctx.session, db, sch)
        ]
    else:
        columns = [
            "name",
            "state",
            "min_nodes",
            "max_nodes",
            "instance_family",
            "created_on",
            "owner",
            "comment",
        ]
        rows = [
            [
                p.name,
                "ACTIVE",
                p.min_nodes,
                p.max_nodes,
                p.instance_family,
                _ts(p.created_on),
                p.owner,
                p.comment or "",
            ]
            for p in resources.list_compute_pools(ctx.session)
        ]
    name_col = columns.index("name")
    if like is not None:
        rows = [r for r in rows if like.fullmatch(str(r[name_col]))]
    return Execution(SqlResult(columns=columns, rows=rows, database=ctx.database, schema=ctx.schema))


_HANDLERS: dict[type[Any], Callable[[_Context, Any], Execution]] = {
    CreateNamespace: _create,
    CreateExternalStage: _create_external_stage,
    CreateComputePool: _create_pool,
    Drop: _drop,
    Use: _use,
    ListFiles: _list,
    RemoveFiles: _remove,
    Show: _show,
}
