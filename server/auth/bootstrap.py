"""The admin at start-up: built-in roles and user, its password, and refusing placeholder secrets.

The cluster (`runbatch server` on Postgres, reachable from a network) refuses to start when
RUNBATCH_ADMIN_TOKEN or RUNBATCH_ADMIN_PASSWORD is a known default: compose.yaml's development
value, anything marked change-me/placeholder/example, or a value too short or too uniform to
be random. The error names the variable and how to generate a value; it never echoes the secret.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from server.auth.passwords import verify_password
from server.auth.users import ensure_builtins, set_password
from server.settings import ServerSettings

__all__ = ["bootstrap_admin", "check_cluster_secrets", "check_secret"]

_MARKERS = (
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "replaceme",
    "placeholder",
    "example",
    "dev-admin",
)
_KNOWN = frozenset({"admin", "password", "runbatch", "runbatch-dev", "secret", "letmein", "12345678"})
_MIN_LENGTH = {"RUNBATCH_ADMIN_TOKEN": 32, "RUNBATCH_ADMIN_PASSWORD": 12}
_GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def check_secret(variable: str, value: str) -> None:
    """Raise ValueError when ``value`` is a default or placeholder rather than a generated secret."""
    lowered = value.strip().lower()
    problem = None
    if lowered in _KNOWN or any(marker in lowered for marker in _MARKERS):
        problem = "is a known default or placeholder value"
    elif len(value) < _MIN_LENGTH[variable]:
        problem = f"is shorter than {_MIN_LENGTH[variable]} characters"
    elif len(set(value)) < 8:
        problem = "repeats too few distinct characters to be random"
    if problem is not None:
        raise ValueError(
            f"{variable} {problem}; the cluster refuses to start with it. Generate a secret with: {_GENERATE} "
            f"and set {variable} in the environment (with docker compose: in the .env file beside compose.yaml)."
        )


def _password(settings: ServerSettings) -> str:
    # Empty means unset: compose passes ${RUNBATCH_ADMIN_PASSWORD:-} through when .env has none.
    return settings.admin_password.get_secret_value() if settings.admin_password is not None else ""


def check_cluster_secrets(settings: ServerSettings) -> None:
    """Before anything starts: a cluster (a Postgres metadata database) takes no default secret."""
    if settings.resolved_database_url().startswith("sqlite"):
        return
    if settings.admin_token is not None:
        check_secret("RUNBATCH_ADMIN_TOKEN", settings.admin_token.get_secret_value())
    if _password(settings):
        check_secret("RUNBATCH_ADMIN_PASSWORD", _password(settings))


def bootstrap_admin(session: Session, settings: ServerSettings) -> None:
    """Ensure the built-in roles and admin user; set admin's password from RUNBATCH_ADMIN_PASSWORD."""
    password = _password(settings)
    admin = ensure_builtins(session)
    # Hash once: a restart with the same password keeps the stored hash (and its salt).
    if password and not verify_password(password, admin.password_hash):
        set_password(session, admin, password)
