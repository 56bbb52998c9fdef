"""Login, users, roles, API tokens and grants on the wire (shared by the SDK, the CLI and the server)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

from runbatch.errors import InvalidArgumentError

__all__ = [
    "GrantPublic",
    "GrantRequest",
    "LoginRequest",
    "LoginResponse",
    "MePublic",
    "RoleCreate",
    "RoleGrant",
    "RolePublic",
    "TokenCreate",
    "TokenCreated",
    "TokenPublic",
    "UserCreate",
    "UserPublic",
    "UserSummary",
    "parse_duration",
]

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"\s*(\d+)\s*([smhdw]?)\s*", re.IGNORECASE)


def parse_duration(text: str) -> timedelta:
    """``30d``, ``12h``, ``90m``, ``45s``, ``2w`` or a number of seconds."""
    match = _DURATION.fullmatch(text)
    if match is None or int(match.group(1)) <= 0:
        raise InvalidArgumentError(
            f"Cannot read the duration {text!r}: write a positive number with a unit s, m, h, d or w, e.g. 30d or 12h."
        )
    return timedelta(seconds=int(match.group(1)) * _UNITS[(match.group(2) or "s").lower()])


class LoginRequest(BaseModel):
    username: str
    password: str = Field(repr=False)


class UserSummary(BaseModel):
    name: str
    roles: list[str]
    default_role: str


class LoginResponse(BaseModel):
    token: str = Field(repr=False)
    expires_at: datetime
    user: UserSummary


class MePublic(BaseModel):
    name: str
    roles: list[str]
    default_role: str
    admin: bool


class UserCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    password: str | None = Field(
        default=None, repr=False, description="At least 8 characters; none: tokens only"
    )
    default_role: str | None = Field(default=None, description="Granted to the user; default PUBLIC")
    comment: str | None = None


class UserPublic(BaseModel):
    name: str
    roles: list[str]
    default_role: str
    has_password: bool
    comment: str | None
    created_on: datetime


class RoleCreate(BaseModel):
    name: str = Field(min_length=1, max_length=255)
    comment: str | None = None


class RolePublic(BaseModel):
    name: str
    comment: str | None
    created_on: datetime


class RoleGrant(BaseModel):
    role: str


class TokenCreate(BaseModel):
    name: str = Field(default="api", min_length=1, max_length=255)
    user: str | None = Field(
        default=None, description="Owner; default the caller (another user: ACCOUNTADMIN only)"
    )
    expires_in: str | None = Field(default=None, description="e.g. 30d, 12h; none and no expires_at: never")
    expires_at: datetime | None = None


class TokenPublic(BaseModel):
    id: uuid.UUID
    name: str
    user: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenPublic):
    secret: str = Field(repr=False, description="Shown once; only its SHA-256 is stored")


class GrantRequest(BaseModel):
    privilege: str = Field(
        description="OWNERSHIP, or: USAGE on models and compute pools; READ, USAGE or WRITE on stages; "
        "READ (pull) or WRITE (push) on image repositories"
    )
    object_type: Literal["MODEL", "COMPUTE_POOL", "STAGE", "IMAGE_REPOSITORY"]
    name: str = Field(description="DB.SCHEMA.NAME (a compute pool: its name; ALL/FUTURE: DB.SCHEMA)")
    role: str
    scope: Literal["OBJECT", "ALL", "FUTURE"] = "OBJECT"


class GrantPublic(BaseModel):
    created_on: str
    privilege: str
    granted_on: str
    name: str
    granted_to: str
    grantee_name: str
    grant_option: str
    granted_by: str
