"""``runbatch models list`` and ``runbatch pools list``: what a control plane can run, and where."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import typer

from runbatch.commands.connection import Database, Schema, Token, Url, control_plane, resolved
from runbatch.commands.display import console, status_text, table, timestamp
from runbatch.identifiers import format_identifier, qualified

__all__ = ["models", "pools"]

models = typer.Typer(help="Models of the registry.", no_args_is_help=True)
pools = typer.Typer(help="Compute pools and the workers serving them.", no_args_is_help=True)


def _scope(database: str | None, schema: str | None) -> str:
    """The IN clause of SHOW MODELS for the options given."""
    if schema is not None:
        if database is None:
            raise typer.BadParameter("--schema needs --database too.", param_hint="--schema")
        return f"IN SCHEMA {format_identifier(database)}.{format_identifier(schema)}"
    if database is not None:
        return f"IN DATABASE {format_identifier(database)}"
    return "IN ACCOUNT"


@models.command("list")
def list_models(
    database: Database = None, schema: Schema = None, url: Url = None, token: Token = None
) -> None:
    """Models with their versions and default version (all databases unless narrowed)."""
    out = console()
    statement = f"SHOW MODELS {_scope(resolved(database), resolved(schema))}"
    with control_plane(url, token) as client:
        result = client.sql(statement, database=None, schema=None)
    rows: list[dict[str, Any]] = [dict(zip(result.columns, row, strict=True)) for row in result.rows]
    if not rows:
        out.print("No models.")
        return
    grid = table("MODEL", "TYPE", "DEFAULT", "VERSIONS", "OWNER", "CREATED (UTC)")
    for row in sorted(rows, key=lambda r: (r["database_name"], r["schema_name"], r["name"])):
        grid.add_row(
            qualified(row["database_name"], row["schema_name"], row["name"]),
            row["model_type"] or "-",
            row["default_version_name"] or "-",
            ", ".join(json.loads(row["versions"])),
            row["owner"],
            timestamp(datetime.fromisoformat(row["created_on"])),
        )
    out.print(grid)


@pools.command("list")
def list_pools(url: Url = None, token: Token = None) -> None:
    """Compute pools: state, live workers, their slots, and the shards running now."""
    out = console()
    with control_plane(url, token) as client:
        found = client.list_compute_pools()
    grid = table("POOL", "STATE", "INSTANCE FAMILY", "NODES", "WORKERS", "SLOTS", "RUNNING")
    for pool in found:
        grid.add_row(
            pool.name,
            status_text(pool.state),
            pool.instance_family,
            f"{pool.min_nodes}-{pool.max_nodes}",
            str(len(pool.workers)),
            str(sum(w.slots for w in pool.workers)),
            str(pool.running_shards),
        )
    out.print(grid)
