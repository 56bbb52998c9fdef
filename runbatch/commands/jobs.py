"""``runbatch jobs list|show|logs|cancel``: batch jobs of a control plane, for operators."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from runbatch.commands.connection import Database, Schema, Token, Url, control_plane, find_job, resolved
from runbatch.commands.display import (
    JobProgress,
    console,
    duration,
    rows_progress,
    status_text,
    table,
    throughput,
    timestamp,
)

if TYPE_CHECKING:
    from runbatch.client import ControlPlaneClient
    from runbatch.wire.jobs import JobPublic

__all__ = ["STATUSES", "TERMINAL_STATUSES", "app"]

app = typer.Typer(
    help="Batch jobs: list, show (with a live progress bar), logs, cancel.", no_args_is_help=True
)

# Kept here, not imported from runbatch.ml.jobs: the CLI must not import the SDK's session machinery.
TERMINAL_STATUSES = frozenset({"DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR", "DELETED"})
STATUSES = ("PENDING", "RUNNING", "CANCELLING", *sorted(TERMINAL_STATUSES))
_POLL_S = 1.0

JobName = Annotated[str, typer.Argument(help="The job: NAME, SCHEMA.NAME or DATABASE.SCHEMA.NAME.")]


@app.command("list")
def list_jobs(
    database: Database = None,
    schema: Schema = None,
    status: Annotated[str | None, typer.Option(help="Only jobs of this status (DONE, RUNNING, ...).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first (0: all).")] = 20,
    url: Url = None,
    token: Token = None,
) -> None:
    """Jobs, newest first, with their progress."""
    out = console()
    if status is not None and status.upper() not in STATUSES:
        raise typer.BadParameter(f"{status!r} is not a job status; use one of {', '.join(STATUSES)}.")
    with control_plane(url, token) as client:
        found = client.list_jobs(
            database=resolved(database),
            schema=resolved(schema),
            status=status.upper() if status else None,
            limit=limit,
        )
    if not found.data:
        out.print("No jobs.")
        return
    grid = table("JOB", "STATUS", "ROWS", "SHARDS", "POOL", "MODEL", "VERSION", "CREATED (UTC)")
    for job in found.data:
        grid.add_row(
            job.id,
            status_text(job.status),
            rows_progress(job),
            f"{job.shards_done}/{job.shards_total}",
            job.compute_pool,
            job.model_name,
            job.version_name,
            timestamp(job.created_at),
        )
    out.print(grid)
    if found.count > len(found.data):
        out.print(f"{len(found.data)} of {found.count} jobs; --limit 0 lists all.")


def _details(job: JobPublic) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    failed = f", {job.rows_failed:,} failed" if job.rows_failed else ""
    rows: list[tuple[str, str | Text]] = [
        ("Job", job.id),
        ("Status", status_text(job.status)),
        ("Phase", job.phase),
    ]
    if job.message:
        rows.append(("Message", job.message))
    rows += [
        ("Model", f"{job.model_name} version {job.version_name}, function {job.function_name}"),
        ("Compute pool", job.compute_pool),
        ("Owner", job.owner),
        ("Input", job.input_location),
        ("Output", job.output_location),
        ("Rows", rows_progress(job) + failed),
        ("Shards", f"{job.shards_done}/{job.shards_total} done, {job.shards_failed} failed"),
        ("Created", timestamp(job.created_at)),
        ("Started", timestamp(job.started_at)),
        ("Finished", timestamp(job.finished_at)),
    ]
    if job.started_at is not None and job.finished_at is not None:
        rows.append(("Duration", duration((job.finished_at - job.started_at).total_seconds())))
    if job.started_at is not None:
        rows.append(("Throughput", throughput(job)))
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _shards(client: ControlPlaneClient, job: JobPublic) -> Table:
    grid = table("SHARD", "STATE", "ATTEMPT", "ROWS", "FAILED", "WORKER", "MESSAGE")
    for shard in client.job_shards(job.database_name, job.schema_name, job.name):
        grid.add_row(
            str(shard.index),
            status_text(shard.state),
            f"{shard.attempt}/{shard.max_attempts}",
            f"{shard.rows_done:,}/{shard.rows_total:,}",
            f"{shard.rows_failed:,}",
            shard.worker or "-",
            shard.message,
        )
    return grid


def _show(out: Console, client: ControlPlaneClient, job: JobPublic) -> None:
    out.print(_details(job))
    if job.shards_total:
        out.print()
        out.print(_shards(client, job))


@app.command()
def show(
    name: JobName,
    database: Database = None,
    schema: Schema = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Follow the job with a live progress bar until it ends.")
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """A job's status, counters, timestamps and shards. With --watch, exits 0 when it ends DONE, else 1."""
    out = console()
    with control_plane(url, token) as client:
        job = find_job(client, name, database, schema)
        if watch and job.status not in TERMINAL_STATUSES:
            with JobProgress(out, job) as bar:
                while job.status not in TERMINAL_STATUSES:
                    bar.update(job)
                    time.sleep(_POLL_S)
                    job = client.get_job(job.database_name, job.schema_name, job.name)
                bar.update(job)
        _show(out, client, job)
    if watch and job.status != "DONE":
        raise typer.Exit(1)


@app.command()
def logs(
    name: JobName,
    database: Database = None,
    schema: Schema = None,
    instance: Annotated[
        int | None, typer.Option(help="Only this instance (shard index); lines of all are prefixed [index].")
    ] = None,
    limit: Annotated[int, typer.Option(help="Only the last N lines (0: all).")] = 0,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the job ends.")
    ] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """A job's log lines (the output of its runtimes)."""
    with control_plane(url, token) as client:
        job = find_job(client, name, database, schema)
        if follow:
            # The server streams new lines as they arrive and ends the stream when the job ends.
            for entry in client.follow_job_logs(
                job.database_name, job.schema_name, job.name, instance_id=instance, limit=limit
            ):
                typer.echo(entry.line if instance is not None else f"[{entry.instance_id}] {entry.line}")
            return
        lines = client.job_logs(
            job.database_name,
            job.schema_name,
            job.name,
            instance_id=instance,
            limit=limit if limit > 0 else -1,
        ).data
    for entry in lines:
        typer.echo(entry.line if instance is not None else f"[{entry.instance_id}] {entry.line}")


@app.command()
def cancel(
    name: JobName,
    database: Database = None,
    schema: Schema = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Ask a job to stop: waiting shards never start, running ones are stopped."""
    with control_plane(url, token) as client:
        job = find_job(client, name, database, schema)
        if job.status in TERMINAL_STATUSES:
            typer.echo(f"Job {job.id} already ended {job.status}; nothing to cancel.")
            return
        job = client.cancel_job(job.database_name, job.schema_name, job.name)
    typer.echo(f"Job {job.id} is {job.status}.")
