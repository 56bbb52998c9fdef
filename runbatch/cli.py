"""The ``runbatch`` command. Server and worker commands plug in through the ``runbatch.cli`` entry points."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from runbatch import __version__

__all__ = ["app", "main"]

app = typer.Typer(
    help="runbatch: self-hosted batch inference with Snowflake's run_batch API.", no_args_is_help=True
)


@app.command()
def version() -> None:
    """Print the runbatch version."""
    typer.echo(__version__)


def main() -> None:
    for ep in entry_points(group="runbatch.cli"):
        ep.load()(app)
    app()


if __name__ == "__main__":
    main()
