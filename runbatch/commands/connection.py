"""Which control plane an operator command talks to, how errors reach the operator, and how a job is named."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from runbatch.errors import InvalidArgumentError, NotFoundError, RunbatchError
from runbatch.identifiers import parse_qualified_name, qualified, resolve_identifier

if TYPE_CHECKING:
    from runbatch.client import ControlPlaneClient
    from runbatch.wire.jobs import JobPublic

__all__ = ["Database", "Schema", "Token", "Url", "control_plane", "find_job", "resolved"]

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="RUNBATCH_API_URL",
        show_envvar=False,
        help="Control plane URL (default RUNBATCH_API_URL).",
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="RUNBATCH_TOKEN", show_envvar=False, help="Bearer token (default RUNBATCH_TOKEN)."
    ),
]
Database = Annotated[str | None, typer.Option("--database", help="Only this database.")]
Schema = Annotated[str | None, typer.Option("--schema", help="Only this schema.")]


@contextmanager
def control_plane(url: str | None, token: str | None) -> Iterator[ControlPlaneClient]:
    """A client of the named control plane; a runbatch error ends the command with its message and exit 1."""
    missing = [name for name, value in (("RUNBATCH_API_URL", url), ("RUNBATCH_TOKEN", token)) if not value]
    if missing:
        typer.echo(
            f"Set {' and '.join(missing)} (or pass --url and --token) to name the control plane; the admin "
            "token of a `runbatch server` is in its $RUNBATCH_HOME/token.",
            err=True,
        )
        raise typer.Exit(2)
    assert url is not None and token is not None
    # Imported here: the client pulls in pyarrow and pandas, which `runbatch --help` should not wait for.
    from runbatch.client import ControlPlaneClient

    client = ControlPlaneClient(url, token, retries=1)
    try:
        yield client
    except RunbatchError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        client.close()


def resolved(name: str | None) -> str | None:
    """An identifier as the control plane stores it (``ml`` -> ``ML``, ``"ml"`` -> ``ml``)."""
    return None if name is None else resolve_identifier(name)


def find_job(client: ControlPlaneClient, name: str, database: str | None, schema: str | None) -> JobPublic:
    """The job ``[DATABASE.][SCHEMA.]NAME``; a bare name is looked up in every schema (it must be unique)."""
    parts = parse_qualified_name(name)
    job_name = parts[-1]
    if len(parts) >= 2:
        schema = parts[-2]
    else:
        schema = resolved(schema)
    database = parts[0] if len(parts) == 3 else resolved(database)
    if database is not None and schema is not None:
        return client.get_job(database, schema, job_name)
    found = client.list_jobs(database=database, schema=schema, name=job_name, limit=10)
    if found.count == 0:
        where = (
            f" in {qualified(*(p for p in (database, schema) if p is not None))}"
            if database or schema
            else ""
        )
        raise NotFoundError(f"There is no job named {job_name}{where}; `runbatch jobs list` shows the jobs.")
    if found.count > 1:
        ids = ", ".join(j.id for j in found.data)
        raise InvalidArgumentError(
            f"{found.count} jobs are named {job_name} ({ids}); name one as DATABASE.SCHEMA.NAME."
        )
    return found.data[0]
