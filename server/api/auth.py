"""Login, logout, the caller, and API tokens.

``POST /login`` is unauthenticated by necessity (like /health): it trades a password for an
ordinary API token of the user that expires after RUNBATCH_LOGIN_TOKEN_TTL_S.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi import APIRouter, Request, status
from sqlalchemy import ColumnElement, select

from runbatch.errors import InvalidArgumentError, NotFoundError
from runbatch.wire.auth import (
    LoginRequest,
    LoginResponse,
    MePublic,
    TokenCreate,
    TokenCreated,
    TokenPublic,
    UserSummary,
    parse_duration,
)
from server.auth import users
from server.auth.login import LoginThrottle, check_login, issue_login_token
from server.auth.privileges import require_admin
from server.auth.tokens import ROLE_USER, Principal, issue_token
from server.db.tables import ApiTokenRow, UserRow, utcnow
from server.deps import ControlPlaneDep, SessionDep, UserDep

router = APIRouter(tags=["auth"])


def _throttle(request: Request) -> LoginThrottle:
    state = request.app.state
    if getattr(state, "login_throttle", None) is None:
        state.login_throttle = LoginThrottle()
    throttle: LoginThrottle = state.login_throttle
    return throttle


@router.post("/login")
def post_login(body: LoginRequest, request: Request, cp: ControlPlaneDep) -> LoginResponse:
    """A password for a token (unauthenticated); wrong name or password: one 401 either way."""
    with cp.read_sessionmaker() as reading:
        user = check_login(reading, _throttle(request), body.username, body.password)
        summary = UserSummary(
            name=user.name, roles=users.roles_of(reading, user), default_role=user.default_role
        )
    with cp.sessionmaker() as session:
        row, secret = issue_login_token(session, user.id, timedelta(seconds=cp.settings.login_token_ttl_s))
        session.commit()
    assert row.expires_at is not None
    return LoginResponse(token=secret, expires_at=row.expires_at, user=summary)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
def post_logout(session: SessionDep, user: UserDep) -> None:
    """End a sign-in: revoke the expiring token this request came with.

    A token that never expires is an installation's or a tool's, not a sign-in; ending it here
    would lock out whatever is configured with it, so that takes an explicit revoke.
    """
    row = session.get(ApiTokenRow, user.token_id) if user.token_id is not None else None
    if row is not None and row.expires_at is None:
        raise InvalidArgumentError(
            "This token never expires, so it is not a sign-in to end. Revoke it explicitly with "
            f"DELETE /api/v1/tokens/{row.id} or `runbatch token revoke {row.id}`."
        )
    if row is not None and row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()


@router.get("/me")
def get_me(user: UserDep) -> MePublic:
    roles = sorted(user.roles)
    return MePublic(
        name=user.name, roles=roles, default_role=user.default_role or user.owner_role, admin=user.is_admin
    )


def _token_public(row: ApiTokenRow, owner: str | None) -> TokenPublic:
    return TokenPublic(
        id=row.id,
        name=row.name,
        user=owner,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
    )


def _owner_name(session: SessionDep, row: ApiTokenRow) -> str | None:
    owner = session.get(UserRow, row.user_id) if row.user_id is not None else None
    return owner.name if owner is not None else None


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
def create_token(body: TokenCreate, session: SessionDep, user: UserDep) -> TokenCreated:
    """A token for the caller, or for another user (ACCOUNTADMIN); the secret is in this answer only."""
    if body.user is not None and body.user.lower() != user.name.lower():
        require_admin(user, f"create a token for user {body.user}")
        owner = users.get_user(session, body.user)
    elif user.user_id is not None:
        owner = users.get_user(session, user.name)
    else:
        raise InvalidArgumentError(
            "This token belongs to no user; name the owner of the new token in 'user'."
        )
    if body.expires_in is not None and body.expires_at is not None:
        raise InvalidArgumentError("Give expires_in or expires_at, not both.")
    expires_at = body.expires_at
    if body.expires_in is not None:
        expires_at = utcnow() + parse_duration(body.expires_in)
    if expires_at is not None and (expires_at.tzinfo is None or expires_at <= utcnow()):
        raise InvalidArgumentError(
            "expires_at must be a future time with a time zone, e.g. 2030-01-01T00:00:00Z."
        )
    row, secret = issue_token(
        session, name=body.name, role=ROLE_USER, user_id=owner.id, expires_at=expires_at
    )
    session.commit()
    return TokenCreated(**_token_public(row, owner.name).model_dump(), secret=secret)


@router.get("/tokens")
def list_tokens(session: SessionDep, user: UserDep, all_users: bool = False) -> list[TokenPublic]:
    """The caller's tokens; ``all_users`` (ACCOUNTADMIN): everyone's. Never a secret."""
    query = select(ApiTokenRow).order_by(ApiTokenRow.created_at)
    if all_users:
        require_admin(user, "list every user's tokens")
    else:
        query = query.where(_mine(user))
    return [_token_public(row, _owner_name(session, row)) for row in session.scalars(query)]


def _mine(user: Principal) -> ColumnElement[bool]:
    if user.user_id is None:
        return ApiTokenRow.id == user.token_id
    return ApiTokenRow.user_id == user.user_id


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke_token(token_id: uuid.UUID, session: SessionDep, user: UserDep) -> None:
    """Revoke a token of the caller's (any token: ACCOUNTADMIN). Revoking twice is not an error."""
    row = session.get(ApiTokenRow, token_id)
    if row is None or not (user.is_admin or (user.user_id is not None and row.user_id == user.user_id)):
        raise NotFoundError(f"Token {token_id} does not exist or not authorized.")
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
