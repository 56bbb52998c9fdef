"""Operator commands of the ``runbatch`` CLI: jobs, models and compute pools of a running control plane."""

from __future__ import annotations

import typer

from runbatch.commands import catalog, jobs, tokens

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.add_typer(jobs.app, name="jobs")
    app.add_typer(catalog.models, name="models")
    app.add_typer(catalog.pools, name="pools")
    app.add_typer(tokens.app, name="token")
