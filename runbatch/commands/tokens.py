"""``runbatch token create|list|revoke``: API tokens of a control plane, for operators."""

from __future__ import annotations

from typing import Annotated

import typer

from runbatch.commands.connection import Token, Url, control_plane
from runbatch.commands.display import console, table, timestamp

__all__ = ["app"]

app = typer.Typer(help="API tokens: create (the secret is printed once), list, revoke.", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Option(help="A label for the token, e.g. the tool that uses it.")] = "cli",
    user: Annotated[
        str | None,
        typer.Option(help="Owner of the token (default: the caller; another user needs ACCOUNTADMIN)."),
    ] = None,
    expires_in: Annotated[
        str | None,
        typer.Option("--expires-in", help="Lifetime such as 30d, 12h or 90m (default: no expiry)."),
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Create a token and print its secret: this is the only time the secret is shown."""
    with control_plane(url, token) as client:
        created = client.create_token(name=name, user=user, expires_in=expires_in)
    expiry = timestamp(created.expires_at) if created.expires_at is not None else "never"
    typer.echo(created.secret)
    typer.echo(f"token {created.id} of {created.user}, expires {expiry}; store the secret now.", err=True)


@app.command("list")
def list_tokens(
    all_users: Annotated[bool, typer.Option("--all", help="Every user's tokens (ACCOUNTADMIN).")] = False,
    url: Url = None,
    token: Token = None,
) -> None:
    """Tokens (never their secrets), oldest first."""
    with control_plane(url, token) as client:
        found = client.list_tokens(all_users=all_users)
    out = console()
    if not found:
        out.print("No tokens.")
        return
    grid = table("ID", "NAME", "USER", "CREATED (UTC)", "EXPIRES (UTC)", "REVOKED (UTC)")
    for t in found:
        grid.add_row(
            str(t.id),
            t.name,
            t.user or "-",
            timestamp(t.created_at),
            timestamp(t.expires_at) if t.expires_at else "never",
            timestamp(t.revoked_at) if t.revoked_at else "-",
        )
    out.print(grid)


@app.command("revoke")
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id, as `runbatch token list` shows it.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Revoke a token: every later request with it is refused (401)."""
    with control_plane(url, token) as client:
        client.revoke_token(token_id)
    typer.echo(f"Revoked token {token_id}.")
