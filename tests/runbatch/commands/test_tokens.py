"""`runbatch token create|list|revoke` against a real `runbatch server`."""

from __future__ import annotations

import re
import uuid

import httpx
from typer.testing import CliRunner

from runbatch.cli import app
from tests.services import ServerProcess

WIDE = {"COLUMNS": "250"}


def _env(server: ServerProcess, token: str) -> dict[str, str]:
    return {"RUNBATCH_API_URL": server.url, "RUNBATCH_TOKEN": token, **WIDE}


def test_create_list_revoke_round_trip(server_process: ServerProcess) -> None:
    runner = CliRunner()
    user = f"cli_{uuid.uuid4().hex[:6]}"
    admin = _env(server_process, server_process.token)
    api = f"{server_process.url}/api/v1"
    created_user = httpx.post(f"{api}/users", headers=server_process.auth, json={"name": user}, timeout=30)
    assert created_user.status_code == 201

    made = runner.invoke(
        app, ["token", "create", "--name", "nightly", "--user", user, "--expires-in", "30d"], env=admin
    )
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert re.fullmatch(r"rbt_[A-Za-z0-9_-]{43}", secret)
    token_id = re.search(r"token ([0-9a-f-]{36}) of " + user, made.stderr)
    assert token_id is not None, made.stderr
    me = httpx.get(f"{api}/me", headers={"Authorization": f"Bearer {secret}"}, timeout=30).json()
    assert me == {"name": user, "roles": ["PUBLIC"], "default_role": "PUBLIC", "admin": False}

    # The new token lists its own tokens (never a secret); then it is revoked and refused.
    listed = runner.invoke(app, ["token", "list"], env=_env(server_process, secret))
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "NAME",
        "USER",
        "CREATED",
        "(UTC)",
        "EXPIRES",
        "(UTC)",
        "REVOKED",
        "(UTC)",
    ]
    assert len(lines) == 2 and lines[1].split()[:3] == [token_id.group(1), "nightly", user]
    assert secret not in listed.stdout

    revoked = runner.invoke(app, ["token", "revoke", token_id.group(1)], env=admin)
    assert revoked.exit_code == 0 and revoked.stdout == f"Revoked token {token_id.group(1)}.\n"
    refused = runner.invoke(app, ["token", "list"], env=_env(server_process, secret))
    assert refused.exit_code == 1
    assert refused.stderr == "Error: The bearer token is not valid (unknown, revoked or expired).\n"


def test_create_refuses_a_bad_lifetime(server_process: ServerProcess) -> None:
    made = CliRunner().invoke(
        app, ["token", "create", "--expires-in", "soon"], env=_env(server_process, server_process.token)
    )
    assert made.exit_code == 1
    assert made.stderr == (
        "Error: Cannot read the duration 'soon': write a positive number with a unit s, m, h, d or w, e.g. 30d "
        "or 12h.\n"
    )
