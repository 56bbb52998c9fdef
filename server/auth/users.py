"""Users and roles: the built-in ACCOUNTADMIN and PUBLIC roles, the ``admin`` user, role grants.

User names compare case-insensitively (Snowflake's login names do); role names are resolved
identifiers (``analyst`` -> ``ANALYST``). Every user holds PUBLIC without a stored grant.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, PermissionDeniedError
from server.auth.passwords import hash_password
from server.db.tables import RoleRow, UserRoleRow, UserRow

__all__ = [
    "ACCOUNTADMIN",
    "ADMIN_USER",
    "BUILTIN_ROLES",
    "PUBLIC",
    "create_role",
    "create_user",
    "drop_role",
    "drop_user",
    "ensure_builtins",
    "find_user",
    "get_role",
    "get_user",
    "grant_role",
    "list_roles",
    "list_users",
    "revoke_role",
    "roles_of",
    "set_password",
]

ACCOUNTADMIN = "ACCOUNTADMIN"
PUBLIC = "PUBLIC"
BUILTIN_ROLES = (ACCOUNTADMIN, PUBLIC)
ADMIN_USER = "admin"
_MIN_PASSWORD = 8


def ensure_builtins(session: Session) -> UserRow:
    """The built-in roles and the admin user (the migration seeds them; this repairs a deleted row)."""
    for name in BUILTIN_ROLES:
        if session.scalars(select(RoleRow).where(RoleRow.name == name)).first() is None:
            session.add(RoleRow(name=name))
    session.flush()
    admin = find_user(session, ADMIN_USER)
    if admin is None:
        admin = UserRow(name=ADMIN_USER, default_role=ACCOUNTADMIN)
        session.add(admin)
        session.flush()
    if ACCOUNTADMIN not in roles_of(session, admin):
        grant_role(session, admin, get_role(session, ACCOUNTADMIN))
    return admin


def roles_of(session: Session, user: UserRow) -> list[str]:
    names = set(
        session.scalars(
            select(RoleRow.name)
            .join(UserRoleRow, UserRoleRow.role_id == RoleRow.id)
            .where(UserRoleRow.user_id == user.id)
        )
    )
    return sorted(names | {PUBLIC})


def find_user(session: Session, name: str) -> UserRow | None:
    return session.scalars(select(UserRow).where(func.lower(UserRow.name) == name.lower())).first()


def get_user(session: Session, name: str) -> UserRow:
    user = find_user(session, name)
    if user is None:
        raise NotFoundError(f"User '{name}' does not exist or not authorized.")
    return user


def list_users(session: Session) -> list[UserRow]:
    return list(session.scalars(select(UserRow).order_by(UserRow.name)))


def _check_password(password: str) -> None:
    if len(password) < _MIN_PASSWORD:
        raise InvalidArgumentError(
            f"A password must be at least {_MIN_PASSWORD} characters long; choose a longer one."
        )


def create_user(
    session: Session,
    name: str,
    *,
    password: str | None,
    default_role: str | None,
    comment: str | None = None,
    if_not_exists: bool = False,
) -> tuple[UserRow, bool]:
    """A new user; its default role (PUBLIC unless named) is granted to it, so it can act with it."""
    if not name.strip():
        raise InvalidArgumentError("A user needs a non-empty name.")
    existing = find_user(session, name)
    if existing is not None:
        if if_not_exists:
            return existing, False
        raise AlreadyExistsError(f"User '{existing.name}' already exists.")
    role = get_role(session, default_role or PUBLIC)
    if password is not None:
        _check_password(password)
    user = UserRow(
        name=name,
        password_hash=hash_password(password) if password is not None else None,
        default_role=role.name,
        comment=comment,
    )
    session.add(user)
    session.flush()
    if role.name != PUBLIC:
        grant_role(session, user, role)
    return user, True


def set_password(session: Session, user: UserRow, password: str) -> None:
    _check_password(password)
    user.password_hash = hash_password(password)
    session.flush()


def drop_user(session: Session, name: str, *, if_exists: bool = False) -> bool:
    user = find_user(session, name)
    if user is None:
        if if_exists:
            return False
        raise NotFoundError(f"User '{name}' does not exist or not authorized.")
    if user.name == ADMIN_USER:
        raise PermissionDeniedError("The built-in admin user cannot be dropped.")
    session.delete(user)
    session.flush()
    return True


def get_role(session: Session, name: str) -> RoleRow:
    role = session.scalars(select(RoleRow).where(RoleRow.name == name)).first()
    if role is None:
        raise NotFoundError(f"Role '{name}' does not exist or not authorized.")
    return role


def list_roles(session: Session) -> list[RoleRow]:
    return list(session.scalars(select(RoleRow).order_by(RoleRow.name)))


def create_role(
    session: Session, name: str, *, comment: str | None = None, if_not_exists: bool = False
) -> tuple[RoleRow, bool]:
    existing = session.scalars(select(RoleRow).where(RoleRow.name == name)).first()
    if existing is not None:
        if if_not_exists:
            return existing, False
        raise AlreadyExistsError(f"Role '{name}' already exists.")
    role = RoleRow(name=name, comment=comment)
    session.add(role)
    session.flush()
    return role, True


def drop_role(session: Session, name: str, *, if_exists: bool = False) -> bool:
    if name in BUILTIN_ROLES:
        raise PermissionDeniedError(f"The built-in role {name} cannot be dropped.")
    role = session.scalars(select(RoleRow).where(RoleRow.name == name)).first()
    if role is None:
        if if_exists:
            return False
        raise NotFoundError(f"Role '{name}' does not exist or not authorized.")
    session.delete(role)
    session.flush()
    return True


def grant_role(session: Session, user: UserRow, role: RoleRow) -> None:
    if role.name == PUBLIC:
        return  # every user holds it already
    if session.get(UserRoleRow, (user.id, role.id)) is None:
        session.add(UserRoleRow(user_id=user.id, role_id=role.id))
        session.flush()


def revoke_role(session: Session, user: UserRow, role: RoleRow) -> None:
    if role.name == PUBLIC:
        raise InvalidArgumentError("PUBLIC is held by every user and cannot be revoked.")
    if user.name == ADMIN_USER and role.name == ACCOUNTADMIN:
        raise PermissionDeniedError("ACCOUNTADMIN cannot be revoked from the built-in admin user.")
    session.execute(delete(UserRoleRow).where(UserRoleRow.user_id == user.id, UserRoleRow.role_id == role.id))
    session.flush()
