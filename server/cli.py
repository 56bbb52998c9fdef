"""``runbatch server`` and ``runbatch migrate``."""

from __future__ import annotations

import logging

import typer

from migrations import upgrade_to_head
from runbatch.log_format import configure_logging
from server.db.engine import make_engine
from server.settings import ServerSettings

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    @app.command()
    def server(
        host: str = typer.Option(None, help="Interface to listen on (default RUNBATCH_HOST or 127.0.0.1)."),
        port: int = typer.Option(None, help="Port to listen on (default RUNBATCH_PORT or 8080)."),
    ) -> None:
        """Serve the control plane over REST, with in-process workers running shards as subprocesses."""
        from server.embedded import ControlPlaneProcess

        settings = ServerSettings()
        configure_logging(settings.log_level, settings.log_format)
        # With JSON logs every line of output is a JSON object, these too.
        say = logging.getLogger("runbatch.server").info if settings.log_format == "json" else typer.echo
        try:
            process = ControlPlaneProcess(settings)
        except ValueError as exc:  # a refused setting: its message says how to fix it
            typer.echo(f"Error: {exc}", err=True)
            raise typer.Exit(2) from None
        say(
            f"runbatch {settings.resolved_database_url().split(':')[0]} metadata, storage {settings.resolved_stage_url()}"
        )
        say(f"admin token: {settings.home / 'token'}")
        process.serve_forever(host or settings.host, port if port is not None else settings.port)

    @app.command()
    def migrate() -> None:
        """Upgrade the metadata database (RUNBATCH_DATABASE_URL) to the newest schema."""
        settings = ServerSettings()
        engine = make_engine(settings.resolved_database_url())
        upgrade_to_head(engine)
        typer.echo("The metadata database is up to date.")
