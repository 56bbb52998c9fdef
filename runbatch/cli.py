"""The ``runbatch`` command. Server and worker commands plug in through the ``runbatch.cli`` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from runbatch import __version__
from runbatch.commands import register as register_operator_commands

__all__ = ["app", "main"]

app = typer.Typer(
    help="runbatch: self-hosted batch inference with Snowflake's run_batch API.", no_args_is_help=True
)


@app.command()
def version() -> None:
    """Print the runbatch version."""
    typer.echo(__version__)


register_operator_commands(app)


def _not_installed(name: str, missing: str | None) -> None:
    """Stands in for a command whose package's dependencies are not installed (a worker-only image)."""

    @app.command(name=name, context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def unavailable() -> None:
        typer.echo(
            f"`runbatch {name}` is not installed here (missing module {missing}); "
            f"install it with: pip install 'runbatch[{name}]'",
            err=True,
        )
        raise typer.Exit(2)


def main() -> None:
    for ep in entry_points(group="runbatch.cli"):
        try:
            register = ep.load()
        except ModuleNotFoundError as exc:
            _not_installed(ep.name, exc.name)
            continue
        register(app)
    app()


if __name__ == "__main__":
    main()
