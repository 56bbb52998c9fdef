"""Token issue and verification. Secrets are 256-bit random; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.errors import AuthenticationError
from server.db.tables import ApiTokenRow, ShardRow, utcnow

__all__ = [
    "ROLE_ADMIN",
    "ROLE_SHARD",
    "Principal",
    "authenticate",
    "create_token",
    "ensure_admin_token_file",
    "ensure_configured_admin_token",
    "hash_secret",
    "new_shard_secret",
]

ROLE_ADMIN = "ADMIN"
ROLE_SHARD = "SHARD"
_API_PREFIX = "rbt_"
_SHARD_PREFIX = "rbs_"


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    shard_id: uuid.UUID | None = None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_shard_secret() -> str:
    return _SHARD_PREFIX + secrets.token_urlsafe(32)


def create_token(session: Session, *, name: str, role: str) -> str:
    secret = _API_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiTokenRow(name=name, role=role, token_hash=hash_secret(secret)))
    session.flush()
    return secret


def ensure_configured_admin_token(session: Session, secret: str) -> None:
    """Accept ``secret`` (RUNBATCH_ADMIN_TOKEN) as an admin token; idempotent across restarts."""
    if len(secret) < 32 or secret.startswith(_SHARD_PREFIX):
        raise ValueError(
            "RUNBATCH_ADMIN_TOKEN must be at least 32 characters and must not start with 'rbs_'; generate one "
            "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    digest = hash_secret(secret)
    if session.scalars(select(ApiTokenRow.id).where(ApiTokenRow.token_hash == digest)).first() is None:
        session.add(ApiTokenRow(name="admin (RUNBATCH_ADMIN_TOKEN)", role=ROLE_ADMIN, token_hash=digest))
        session.flush()


def authenticate(session: Session, secret: str) -> Principal:
    digest = hash_secret(secret)
    if secret.startswith(_SHARD_PREFIX):
        shard = session.scalars(select(ShardRow).where(ShardRow.token_hash == digest)).one_or_none()
        if shard is not None:
            return Principal(name=f"shard:{shard.id}", role=ROLE_SHARD, shard_id=shard.id)
    else:
        row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).one_or_none()
        if (
            row is not None
            and row.revoked_at is None
            and (row.expires_at is None or row.expires_at > utcnow())
        ):
            return Principal(name=row.name, role=row.role)
    raise AuthenticationError("The bearer token is not valid (unknown, revoked or expired).")


def ensure_admin_token_file(session: Session, home: Path) -> str:
    """Return the admin token written in ``home/token``, minting one if it is missing or dead.

    The token file is written once with mode 0600 and is the only place the secret exists.
    """
    path = home / "token"
    if path.exists():
        secret = path.read_text().strip()
        try:
            if authenticate(session, secret).role == ROLE_ADMIN:
                return secret
        except AuthenticationError:
            pass
    secret = create_token(session, name="admin", role=ROLE_ADMIN)
    home.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)
    return secret
