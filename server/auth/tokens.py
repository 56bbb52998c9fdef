"""Token issue and verification. Secrets are 256-bit random; only their SHA-256 is stored.

An API token belongs to a user (``user_id``) and acts with that user's roles; the admin
token file and RUNBATCH_ADMIN_TOKEN belong to the built-in ``admin`` user. A token without a
user (minted for a DAG's Python task) acts with the role stored on the token.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.errors import AuthenticationError
from server.auth.users import ACCOUNTADMIN, ADMIN_USER, PUBLIC, roles_of
from server.db.tables import ApiTokenRow, ShardRow, UserRow, utcnow

__all__ = [
    "ROLE_ADMIN",
    "ROLE_SHARD",
    "ROLE_USER",
    "Principal",
    "authenticate",
    "create_token",
    "ensure_admin_token_file",
    "ensure_configured_admin_token",
    "hash_secret",
    "issue_token",
    "new_shard_secret",
]

ROLE_ADMIN = "ADMIN"
ROLE_SHARD = "SHARD"
ROLE_USER = "USER"
_API_PREFIX = "rbt_"
_SHARD_PREFIX = "rbs_"


@dataclass(frozen=True)
class Principal:
    """Who calls. ``role`` is ADMIN (ACCOUNTADMIN: every privilege), USER or SHARD (a runtime);
    ``roles`` are the Snowflake roles whose grants a USER acts with."""

    name: str
    role: str
    shard_id: uuid.UUID | None = None
    user_id: int | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    default_role: str | None = None
    token_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ROLE_ADMIN

    @property
    def owner_role(self) -> str:
        """The role that owns what this caller creates (Snowflake: the current role)."""
        if self.is_admin:
            return ACCOUNTADMIN
        # A default role since revoked from the user would own objects the user could not reach.
        return self.default_role if self.default_role in self.roles else PUBLIC


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_shard_secret() -> str:
    return _SHARD_PREFIX + secrets.token_urlsafe(32)


def create_token(
    session: Session,
    *,
    name: str,
    role: str,
    user_id: int | None = None,
    expires_at: datetime | None = None,
) -> str:
    return issue_token(session, name=name, role=role, user_id=user_id, expires_at=expires_at)[1]


def issue_token(
    session: Session,
    *,
    name: str,
    role: str,
    user_id: int | None = None,
    expires_at: datetime | None = None,
) -> tuple[ApiTokenRow, str]:
    """A new token row and its secret (the only time the secret exists in the clear)."""
    secret = _API_PREFIX + secrets.token_urlsafe(32)
    row = ApiTokenRow(
        name=name, role=role, token_hash=hash_secret(secret), user_id=user_id, expires_at=expires_at
    )
    session.add(row)
    session.flush()
    return row, secret


def _admin_user_id(session: Session) -> int | None:
    return session.scalars(select(UserRow.id).where(UserRow.name == ADMIN_USER)).first()


def ensure_configured_admin_token(session: Session, secret: str) -> None:
    """Accept ``secret`` (RUNBATCH_ADMIN_TOKEN) as an admin token; idempotent across restarts."""
    if len(secret) < 32 or secret.startswith(_SHARD_PREFIX):
        raise ValueError(
            "RUNBATCH_ADMIN_TOKEN must be at least 32 characters and must not start with 'rbs_'; generate one "
            "with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    digest = hash_secret(secret)
    row = session.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).first()
    if row is None:
        session.add(
            ApiTokenRow(
                name="admin (RUNBATCH_ADMIN_TOKEN)",
                role=ROLE_ADMIN,
                token_hash=digest,
                user_id=_admin_user_id(session),
            )
        )
        session.flush()


def _valid(row: ApiTokenRow | None) -> ApiTokenRow | None:
    if row is None or row.revoked_at is not None:
        return None
    if row.expires_at is not None and row.expires_at <= utcnow():
        return None
    return row


def authenticate(session: Session, secret: str) -> Principal:
    digest = hash_secret(secret)
    if secret.startswith(_SHARD_PREFIX):
        shard = session.scalars(select(ShardRow).where(ShardRow.token_hash == digest)).one_or_none()
        if shard is not None:
            return Principal(name=f"shard:{shard.id}", role=ROLE_SHARD, shard_id=shard.id)
    else:
        row = _valid(
            session.scalars(select(ApiTokenRow).where(ApiTokenRow.token_hash == digest)).one_or_none()
        )
        if row is not None and row.user_id is None:
            roles = frozenset({ACCOUNTADMIN, PUBLIC}) if row.role == ROLE_ADMIN else frozenset({PUBLIC})
            return Principal(name=row.name, role=row.role, roles=roles, token_id=row.id)
        if row is not None:
            user = session.get(UserRow, row.user_id)
            if user is not None:
                roles = frozenset(roles_of(session, user))
                return Principal(
                    name=user.name,
                    role=ROLE_ADMIN if ACCOUNTADMIN in roles else ROLE_USER,
                    user_id=user.id,
                    roles=roles,
                    default_role=user.default_role,
                    token_id=row.id,
                )
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
    secret = create_token(session, name="admin", role=ROLE_ADMIN, user_id=_admin_user_id(session))
    home.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)
    return secret
