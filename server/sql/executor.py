"""Execute parsed control statements against the services. The caller commits, then runs ``after_commit``."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import yaml
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError, NotFoundError
from runbatch.identifiers import complete_name, qualified
from runbatch.stage.paths import parse_stage_path
from runbatch.stage.storage import Storage
from runbatch.wire.listings import (
    JOB_SERVICE_COLUMNS,
    MODEL_COLUMNS,
    VERSION_COLUMNS,
    job_service_listing,
    model_listing,
    version_listing,
)
from runbatch.wire.resources import SqlResult
from server.auth import privileges
from server.auth.access_sql import AccessStatement, execute_access
from server.auth.tokens import Principal
from server.file_formats import service as file_formats
from server.jobs import service as jobs
from server.registry import service as registry
from server.resources import service as resources
from server.secrets import SecretBox
from server.spcs import service as spcs
from server.sql.descriptions import (
    FUNCTION_COLUMNS,
    STAGE_PROPERTY_COLUMNS,
    TABLE_COLUMNS,
    function_rows,
    stage_property_rows,
    table_column_rows,
)
from server.sql.statements import (
    AlterModel,
    CreateComputePool,
    CreateExternalStage,
    CreateFileFormat,
    CreateNamespace,
    Describe,
    Drop,
    ListFiles,
    RemoveFiles,
    Show,
    ShowInModel,
    ShowScoped,
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
    _authorize(ctx, stmt)
    return _HANDLERS[type(stmt)](ctx, stmt)


def _authorize(ctx: _Context, stmt: Any) -> None:
    """Statements a caller without ACCOUNTADMIN may run; model and stage statements check their object."""
    if ctx.principal.is_admin:
        return
    if isinstance(stmt, (ListFiles, RemoveFiles)):
        path = parse_stage_path(stmt.stage, database=ctx.database, schema=ctx.schema)
        privileges.require_stage(
            ctx.session, ctx.principal, "READ" if isinstance(stmt, ListFiles) else "WRITE", path
        )
        return
    if isinstance(stmt, (AccessStatement, Use, Show, ShowScoped, ShowInModel, Describe, AlterModel)):
        return
    if isinstance(stmt, Drop) and stmt.kind == "MODEL":
        return
    privileges.require_admin(ctx.principal, f"run {type(stmt).__name__} statements")


def _access(ctx: _Context, stmt: AccessStatement) -> Execution:
    out = execute_access(ctx.session, ctx.principal, stmt, database=ctx.database, schema=ctx.schema)
    return Execution(SqlResult(columns=out.columns, rows=out.rows, database=ctx.database, schema=ctx.schema))


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
    elif stmt.kind == "FILE FORMAT":
        db, sch, name = _scope(ctx, stmt.parts, 3)
        dropped = file_formats.drop_file_format(ctx.session, db, sch, name, if_exists=stmt.if_exists)
        keys = []
    elif stmt.kind == "MODEL":
        prefix = _drop_model(ctx, stmt.parts, stmt.if_exists)
        dropped, keys = prefix is not None, [prefix] if prefix is not None else []
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
    elif stmt.kind == "FILE FORMATS":
        db, sch = _scope(ctx, stmt.in_parts, 2) if stmt.in_parts else (ctx.database, ctx.schema)
        if db is None or sch is None:
            raise InvalidArgumentError("SHOW FILE FORMATS needs a current schema or IN SCHEMA <db>.<schema>.")
        columns = [
            "created_on",
            "name",
            "database_name",
            "schema_name",
            "type",
            "owner",
            "comment",
            "format_options",
        ]
        rows = [
            [_ts(f.created_on), f.name, db, sch, f.format_type, f.owner, f.comment or "", fmt.describe()]
            for f in file_formats.list_file_formats(ctx.session, db, sch)
            for fmt in [file_formats.row_format(f)]
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


# -- models, job services and DESCRIBE -------------------------------------------------------------


def _cell(value: Any) -> Any:
    return _ts(value) if isinstance(value, datetime) else value


def _listing(ctx: _Context, columns: list[str], records: list[dict[str, Any]]) -> Execution:
    rows = [[_cell(r[c]) for c in columns] for r in records]
    return Execution(SqlResult(columns=columns, rows=rows, database=ctx.database, schema=ctx.schema))


def _filtered(
    records: list[dict[str, Any]], like: str | None, starts_with: str | None = None
) -> list[dict[str, Any]]:
    pattern = _like(like)
    return [
        r
        for r in records
        if (pattern is None or pattern.fullmatch(r["name"]))
        and (starts_with is None or r["name"].startswith(starts_with))
    ]


def _scope_of_show(ctx: _Context, stmt: ShowScoped) -> tuple[str | None, str | None]:
    """The database and schema a SHOW lists (None: all); a named scope must exist."""
    if stmt.scope in ("ACCOUNT", "COMPUTE POOL"):
        return None, None
    if stmt.scope == "SCHEMA":
        if not stmt.in_parts and (ctx.database is None or ctx.schema is None):
            raise InvalidArgumentError(
                f"SHOW {stmt.kind} IN SCHEMA needs a current schema; name one (IN SCHEMA <db>.<schema>) "
                "or run USE SCHEMA first."
            )
        db, sch = _scope(ctx, stmt.in_parts, 2) if stmt.in_parts else (ctx.database, ctx.schema)
        assert db is not None and sch is not None
        resources.get_schema(ctx.session, db, sch)
        return db, sch
    # IN DATABASE, or no IN: the current database; with none, the whole account (as Snowflake).
    db = stmt.in_parts[0] if stmt.in_parts else ctx.database
    if db is not None:
        resources.get_database(ctx.session, db)
    return db, None


def _show_scoped(ctx: _Context, stmt: ShowScoped) -> Execution:
    database, schema = _scope_of_show(ctx, stmt)
    if stmt.kind == "MODELS":
        models = privileges.visible_models(
            ctx.session, ctx.principal, registry.find_models(ctx.session, database=database, schema=schema)
        )
        columns, records = MODEL_COLUMNS, [model_listing(registry.model_public(m)) for m in models]
    else:
        found, _ = jobs.list_jobs(
            ctx.session, database=database, schema=schema, status=None, limit=0, offset=0
        )
        found = [j for j in found if privileges.may_see_job(ctx.principal, j)]
        if stmt.scope == "COMPUTE POOL":
            pool = resources.get_compute_pool(ctx.session, stmt.in_parts[0]).name
            found = [j for j in found if j.compute_pool == pool]
        publics = sorted(
            (jobs.job_public(j) for j in found), key=lambda j: (j.database_name, j.schema_name, j.name)
        )
        columns, records = JOB_SERVICE_COLUMNS, [job_service_listing(j) for j in publics]
    records = _filtered(records, stmt.like, stmt.starts_with)
    if stmt.limit is not None:
        records = records[: stmt.limit]
    return _listing(ctx, columns, records)


def _show_in_model(ctx: _Context, stmt: ShowInModel) -> Execution:
    model = registry.get_model(ctx.session, *_scope(ctx, stmt.model, 3))
    privileges.require(ctx.session, ctx.principal, "USAGE", model)
    if stmt.kind == "VERSIONS":
        records = [version_listing(registry.version_public(v)) for v in model.versions]
        return _listing(ctx, VERSION_COLUMNS, _filtered(records, stmt.like))
    # Without VERSION, the default version's functions (as Snowflake).
    version = registry.resolve_version(model, stmt.version or "DEFAULT")
    return _listing(ctx, FUNCTION_COLUMNS, _filtered(function_rows(version), stmt.like))


def _describe(ctx: _Context, stmt: Describe) -> Execution:
    columns: list[str]
    rows: list[list[Any]]
    if stmt.kind == "DATABASE":
        (name,) = stmt.parts
        columns = ["created_on", "name", "kind"]
        rows = [[_ts(s.created_on), s.name, "SCHEMA"] for s in resources.list_schemas(ctx.session, name)]
    elif stmt.kind == "SCHEMA":
        db, sch = _scope(ctx, stmt.parts, 2)
        found = [(t.created_on, t.name, "TABLE") for t in tables.list_tables(ctx.session, db, sch)]
        found += [(s.created_on, s.name, "STAGE") for s in stages.list_stages(ctx.session, db, sch)]
        found += [(m.created_on, m.name, "MODEL") for m in registry.list_models(ctx.session, db, sch)]
        columns = ["created_on", "name", "kind"]
        rows = [[_ts(created), name, kind] for created, name, kind in sorted(found, key=lambda f: f[1:])]
    elif stmt.kind == "STAGE":
        columns, rows = (
            STAGE_PROPERTY_COLUMNS,
            stage_property_rows(stages.get_stage(ctx.session, *_scope(ctx, stmt.parts, 3))),
        )
    elif stmt.kind == "TABLE":
        table = tables.get_table(ctx.session, *_scope(ctx, stmt.parts, 3))
        keys = [e.key for e in ctx.storage.list(table.location + "/")]
        schema = ctx.storage.parquet_dataset(keys).schema if keys else pa.schema([])
        columns, rows = TABLE_COLUMNS, table_column_rows(schema)
    elif stmt.kind == "MODEL":
        model = registry.get_model(ctx.session, *_scope(ctx, stmt.parts, 3))
        privileges.require(ctx.session, ctx.principal, "USAGE", model)
        return _listing(ctx, MODEL_COLUMNS, [model_listing(registry.model_public(model))])
    elif stmt.kind == "COMPUTE POOL":
        pool = resources.get_compute_pool(ctx.session, stmt.parts[0])
        listed = _show(ctx, Show("COMPUTE POOLS", None)).result
        columns, rows = (
            listed.columns,
            [r for r in listed.rows if r[listed.columns.index("name")] == pool.name],
        )
    else:
        at = JOB_SERVICE_COLUMNS.index("compute_pool") + 1
        described = [*JOB_SERVICE_COLUMNS[:at], "spec", *JOB_SERVICE_COLUMNS[at:]]
        names = _scope(ctx, stmt.parts, 3)
        try:
            job = jobs.get_job(ctx.session, *names)
        except NotFoundError as missing:
            # A long-running service (CREATE SERVICE) has no job; it is described in the same columns.
            try:
                service = spcs.get_service(ctx.session, *names)
            except NotFoundError:
                raise missing from None
            if not (ctx.principal.is_admin or service.owner == ctx.principal.name):
                raise missing from None  # its specification may hold values only its owner should see
            return _listing(ctx, described, [spcs.describe_record(service)])
        public = jobs.job_public(privileges.require_job(ctx.principal, job))
        record = job_service_listing(public)
        record["spec"] = yaml.safe_dump(public.spec, sort_keys=False)
        if public.spec.get("kind") == "job_service":
            record["spec"] = spcs.get_service(ctx.session, *names).spec_text  # the YAML as given
        return _listing(ctx, described, [record])
    return Execution(SqlResult(columns=columns, rows=rows, database=ctx.database, schema=ctx.schema))


def _drop_model(ctx: _Context, parts: list[str], if_exists: bool) -> str | None:
    """Delete a model as Registry.delete_model does; returns its storage prefix, None when it was absent."""
    try:
        model = registry.get_model(ctx.session, *_scope(ctx, parts, 3))
        privileges.require(ctx.session, ctx.principal, "OWNERSHIP", model)
    except NotFoundError:
        if if_exists:
            return None
        raise
    return registry.delete_model(ctx.session, model)


def _metrics(metadata: str) -> dict[str, Any]:
    try:
        parsed = json.loads(metadata)
    except json.JSONDecodeError as exc:
        raise InvalidArgumentError(f"METADATA is not valid JSON: {exc}.") from None
    if (
        not isinstance(parsed, dict)
        or set(parsed) - {"metrics"}
        or not isinstance(parsed.get("metrics", {}), dict)
    ):
        raise InvalidArgumentError(
            'METADATA takes a JSON object of metrics only, such as \'{"metrics": {"rmse": 0.25}}\'.'
        )
    return dict(parsed.get("metrics", {}))


def _alter_model(ctx: _Context, stmt: AlterModel) -> Execution:
    """Each action goes through the registry service the REST routes use, with the same checks and errors."""
    db, sch, name = _scope(ctx, stmt.parts, 3)
    try:
        model = registry.get_model(ctx.session, db, sch, name)
        privileges.require(ctx.session, ctx.principal, "OWNERSHIP", model)
    except NotFoundError:
        if stmt.if_exists:
            return _status(ctx, "Statement executed successfully.")
        raise
    after: list[Callable[[], None]] = []
    props = stmt.properties
    if stmt.action == "SET":
        if "COMMENT" in props:
            model.comment = props["COMMENT"]
            ctx.session.flush()
        if "DEFAULT_VERSION" in props:
            registry.set_default(ctx.session, model, props["DEFAULT_VERSION"])
    elif stmt.action in ("SET TAG", "UNSET TAG"):
        for tag in stmt.tags:
            # Tag names resolve against the model's schema, as Model.set_tag does.
            tag_db, tag_sch, tag_name = complete_name(tag.parts, db, sch)
            full = qualified(tag_db or db, tag_sch or sch, tag_name)
            if tag.value is None:
                registry.unset_tag(ctx.session, model, full)
            else:
                registry.set_tag(ctx.session, model, full, tag.value)
    elif stmt.action == "SET ALIAS":
        assert stmt.version is not None
        registry.set_alias(ctx.session, model, stmt.version, props["ALIAS"])
    elif stmt.action == "UNSET ALIAS":
        assert stmt.version is not None
        registry.unset_alias(ctx.session, model, stmt.version)
    elif stmt.action == "MODIFY VERSION":
        assert stmt.version is not None
        version = registry.resolve_version(model, stmt.version)
        if "COMMENT" in props:
            version.comment = props["COMMENT"]
        if "METADATA" in props:
            version.metrics = _metrics(props["METADATA"])
        ctx.session.flush()
    else:
        assert stmt.version is not None
        key = registry.delete_version(ctx.session, model, stmt.version)
        after.append(lambda: _purge(ctx.storage, key))
    return _status(ctx, "Statement executed successfully.", after)


def _create_file_format(ctx: _Context, stmt: CreateFileFormat) -> Execution:
    db, sch, name = _scope(ctx, stmt.parts, 3)
    _, created = file_formats.create_file_format(
        ctx.session,
        db,
        sch,
        name,
        stmt.options,
        owner=ctx.principal.name,
        comment=stmt.comment,
        if_not_exists=stmt.if_not_exists,
        or_replace=stmt.or_replace,
    )
    if not created:
        return _status(ctx, f"{qualified(name)} already exists, statement succeeded.")
    return _status(ctx, f"File format {qualified(name)} successfully created.")


_HANDLERS: dict[type[Any], Callable[[_Context, Any], Execution]] = {
    CreateNamespace: _create,
    CreateFileFormat: _create_file_format,
    CreateExternalStage: _create_external_stage,
    CreateComputePool: _create_pool,
    Drop: _drop,
    Use: _use,
    ListFiles: _list,
    RemoveFiles: _remove,
    Show: _show,
    ShowScoped: _show_scoped,
    ShowInModel: _show_in_model,
    Describe: _describe,
    AlterModel: _alter_model,
    AccessStatement: _access,
}
