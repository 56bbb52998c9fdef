"""Users and roles (ACCOUNTADMIN only): create, list, drop, grant and revoke roles."""

from __future__ import annotations

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from runbatch.identifiers import resolve_identifier
from runbatch.wire.auth import RoleCreate, RoleGrant, RolePublic, UserCreate, UserPublic
from server.auth import users
from server.auth.privileges import require_admin
from server.db.tables import RoleRow, UserRow
from server.deps import SessionDep, UserDep

router = APIRouter(tags=["users"])


def _user_public(session: Session, row: UserRow) -> UserPublic:
    return UserPublic(
        name=row.name,
        roles=users.roles_of(session, row),
        default_role=row.default_role,
        has_password=row.password_hash is not None,
        comment=row.comment,
        created_on=row.created_on,
    )


def _role_public(row: RoleRow) -> RolePublic:
    return RolePublic(name=row.name, comment=row.comment, created_on=row.created_on)


def _role_name(name: str) -> str:
    # Role names are identifiers, as in SQL: analyst -> ANALYST, "Mixed" -> Mixed.
    return resolve_identifier(name)


@router.post("/users", status_code=status.HTTP_201_CREATED)
def create_user(body: UserCreate, session: SessionDep, caller: UserDep) -> UserPublic:
    require_admin(caller, "create a user")
    row, _ = users.create_user(
        session,
        body.name,
        password=body.password,
        default_role=_role_name(body.default_role) if body.default_role else None,
        comment=body.comment,
    )
    session.commit()
    return _user_public(session, row)


@router.get("/users")
def list_users(session: SessionDep, caller: UserDep) -> list[UserPublic]:
    require_admin(caller, "list users")
    return [_user_public(session, u) for u in users.list_users(session)]


@router.get("/users/{name}")
def get_user(name: str, session: SessionDep, caller: UserDep) -> UserPublic:
    if name.lower() != caller.name.lower():
        require_admin(caller, f"see user {name}")
    return _user_public(session, users.get_user(session, name))


@router.delete("/users/{name}", status_code=status.HTTP_204_NO_CONTENT)
def drop_user(name: str, session: SessionDep, caller: UserDep) -> None:
    require_admin(caller, "drop a user")
    users.drop_user(session, name)
    session.commit()


@router.post("/users/{name}/roles")
def grant_role(name: str, body: RoleGrant, session: SessionDep, caller: UserDep) -> UserPublic:
    require_admin(caller, "grant a role")
    user = users.get_user(session, name)
    users.grant_role(session, user, users.get_role(session, _role_name(body.role)))
    session.commit()
    return _user_public(session, user)


@router.delete("/users/{name}/roles/{role}")
def revoke_role(name: str, role: str, session: SessionDep, caller: UserDep) -> UserPublic:
    require_admin(caller, "revoke a role")
    user = users.get_user(session, name)
    users.revoke_role(session, user, users.get_role(session, _role_name(role)))
    session.commit()
    return _user_public(session, user)


@router.post("/roles", status_code=status.HTTP_201_CREATED)
def create_role(body: RoleCreate, session: SessionDep, caller: UserDep) -> RolePublic:
    require_admin(caller, "create a role")
    row, _ = users.create_role(session, _role_name(body.name), comment=body.comment)
    session.commit()
    return _role_public(row)


@router.get("/roles")
def list_roles(session: SessionDep, caller: UserDep) -> list[RolePublic]:
    """Every role (ACCOUNTADMIN) or the caller's own."""
    return [_role_public(r) for r in users.list_roles(session) if caller.is_admin or r.name in caller.roles]


@router.delete("/roles/{name}", status_code=status.HTTP_204_NO_CONTENT)
def drop_role(name: str, session: SessionDep, caller: UserDep) -> None:
    require_admin(caller, "drop a role")
    users.drop_role(session, _role_name(name))
    session.commit()
