"""SQL for users, roles and grants: parse and execute.

CREATE USER / ROLE, ALTER USER ... SET, DROP USER / ROLE, GRANT / REVOKE ROLE ... TO / FROM USER,
GRANT / REVOKE <privileges> ON <object> | ALL MODELS IN SCHEMA | FUTURE MODELS IN SCHEMA TO / FROM ROLE,
SHOW USERS / ROLES / GRANTS [ON <object> | TO ROLE r | TO USER u] / FUTURE GRANTS IN SCHEMA.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError, UnsupportedError
from server.auth import grants, users
from server.auth.grants import GrantTarget
from server.auth.privileges import require_admin
from server.auth.tokens import Principal
from server.sql.tokens import Cursor, Kind

__all__ = ["AccessStatement", "AccessResult", "execute_access", "is_access_statement", "parse_access"]


@dataclass(frozen=True)
class AccessStatement:
    """One parsed statement; ``action`` names it (e.g. CREATE USER, GRANT PRIVILEGES, SHOW GRANTS ON)."""

    action: str
    name: str = ""
    if_flag: bool = False
    properties: dict[str, str] = field(default_factory=dict, repr=False)
    privileges: tuple[str, ...] = ()
    target: GrantTarget | None = None
    role: str = ""
    like: str | None = None


@dataclass(frozen=True)
class AccessResult:
    columns: list[str]
    rows: list[list[Any]]


_OBJECT_WORDS = (("COMPUTE", "POOL"), ("MODEL",), ("STAGE",), ("IMAGE", "REPOSITORY"))


def is_access_statement(cur: Cursor) -> bool:
    if cur.at_keyword("GRANT") or cur.at_keyword("REVOKE"):
        return True
    for verb in ("CREATE", "DROP"):
        if cur.at_keyword(verb, "USER") or cur.at_keyword(verb, "ROLE"):
            return True
    if cur.at_keyword("CREATE", "OR", "REPLACE", "ROLE") or cur.at_keyword("ALTER", "USER"):
        return True
    return any(cur.at_keyword("SHOW", what) for what in ("USERS", "ROLES", "GRANTS", "FUTURE"))


def parse_access(cur: Cursor) -> AccessStatement:
    if cur.accept_keyword("CREATE"):
        if cur.accept_keyword("OR", "REPLACE"):
            cur.fail("CREATE OR REPLACE is not supported for users and roles; DROP first")
        kind = "USER" if cur.accept_keyword("USER") else "ROLE"
        if kind == "ROLE":
            cur.expect_keyword("ROLE")
        if_not_exists = cur.accept_keyword("IF", "NOT", "EXISTS")
        name = _principal_name(cur)
        props = _properties(cur, {"USER": ("PASSWORD", "DEFAULT_ROLE", "COMMENT")}.get(kind, ("COMMENT",)))
        return AccessStatement(f"CREATE {kind}", name, if_not_exists, props)
    if cur.accept_keyword("DROP"):
        kind = "USER" if cur.accept_keyword("USER") else "ROLE"
        if kind == "ROLE":
            cur.expect_keyword("ROLE")
        if_exists = cur.accept_keyword("IF", "EXISTS")
        return AccessStatement(f"DROP {kind}", _principal_name(cur), if_exists)
    if cur.accept_keyword("ALTER", "USER"):
        if_exists = cur.accept_keyword("IF", "EXISTS")
        name = _principal_name(cur)
        cur.expect_keyword("SET")
        return AccessStatement(
            "ALTER USER", name, if_exists, _properties(cur, ("PASSWORD", "DEFAULT_ROLE", "COMMENT"))
        )
    if cur.at_keyword("GRANT") or cur.at_keyword("REVOKE"):
        return _grant(cur)
    return _show(cur)


def _principal_name(cur: Cursor) -> str:
    tok = cur.peek()
    if tok.kind is Kind.STRING:
        cur.next()
        return tok.value
    return cur.identifier()


def _properties(cur: Cursor, allowed: tuple[str, ...]) -> dict[str, str]:
    props: dict[str, str] = {}
    while cur.peek().kind is Kind.WORD:
        tok = cur.next()
        key = tok.text.upper()
        if key not in allowed:
            cur.fail(f"unsupported property {key} (supported: {', '.join(allowed)})", tok)
        cur.expect_punct("=")
        tok = cur.peek()
        # An unquoted role name resolves as an identifier; passwords and comments are strings.
        props[key] = (
            cur.identifier() if key == "DEFAULT_ROLE" and tok.kind is not Kind.STRING else cur.value()
        )
    return props


def _grant(cur: Cursor) -> AccessStatement:
    revoke = cur.accept_keyword("REVOKE")
    if not revoke:
        cur.expect_keyword("GRANT")
    verb = "REVOKE" if revoke else "GRANT"
    if cur.accept_keyword("ROLE"):
        role = cur.identifier()
        cur.expect_keyword("FROM" if revoke else "TO")
        cur.expect_keyword("USER")
        return AccessStatement(f"{verb} ROLE", _principal_name(cur), role=role)
    privileges = [cur.next().text.upper()]
    while cur.accept_punct(","):
        privileges.append(cur.next().text.upper())
    cur.expect_keyword("ON")
    target = _target(cur)
    cur.expect_keyword("FROM" if revoke else "TO")
    cur.expect_keyword("ROLE")
    role = cur.identifier()
    if not revoke and privileges == ["OWNERSHIP"]:
        if cur.accept_keyword("COPY") or cur.accept_keyword("REVOKE"):
            cur.expect_keyword("CURRENT", "GRANTS")
    cur.accept_keyword("CASCADE") or cur.accept_keyword("RESTRICT")
    return AccessStatement(f"{verb} PRIVILEGES", privileges=tuple(privileges), target=target, role=role)


def _target(cur: Cursor) -> GrantTarget:
    for scope in ("ALL", "FUTURE"):
        if cur.accept_keyword(scope):
            if not cur.accept_keyword("MODELS"):
                cur.fail(f"runbatch grants on {scope} MODELS IN SCHEMA only")
            cur.expect_keyword("IN", "SCHEMA")
            return GrantTarget("MODEL", tuple(cur.qualified_name(2)), scope)
    for words in _OBJECT_WORDS:
        if cur.accept_keyword(*words):
            kind = "_".join(words)
            return GrantTarget(kind, tuple(cur.qualified_name(1 if kind == "COMPUTE_POOL" else 3)))
    word = cur.peek().text.upper()
    if word in _SNOWFLAKE_OBJECTS:
        raise UnsupportedError(
            f"Privileges on {word} objects are not supported: runbatch grants privileges on MODEL, COMPUTE POOL, "
            "STAGE, IMAGE REPOSITORY, and ALL or FUTURE MODELS IN SCHEMA (see docs/security.md)."
        )
    cur.fail(
        "expected MODEL, COMPUTE POOL, STAGE, IMAGE REPOSITORY, ALL MODELS IN SCHEMA or FUTURE MODELS IN SCHEMA"
    )


# Objects Snowflake grants on that runbatch does not: a valid statement gets "unsupported", not a syntax error.
_SNOWFLAKE_OBJECTS = frozenset(
    {
        "ACCOUNT",
        "DATABASE",
        "SCHEMA",
        "TABLE",
        "VIEW",
        "WAREHOUSE",
        "INTEGRATION",
        "FUNCTION",
        "PROCEDURE",
        "SERVICE",
        "TASK",
        "SEQUENCE",
        "STREAM",
        "PIPE",
        "FILE",
        "TAG",
        "ROLE",
        "USER",
        "IMAGE",
        "NOTEBOOK",
    }
)


def _show(cur: Cursor) -> AccessStatement:
    cur.expect_keyword("SHOW")
    if cur.accept_keyword("USERS"):
        return AccessStatement("SHOW USERS", like=cur.string() if cur.accept_keyword("LIKE") else None)
    if cur.accept_keyword("ROLES"):
        return AccessStatement("SHOW ROLES", like=cur.string() if cur.accept_keyword("LIKE") else None)
    if cur.accept_keyword("FUTURE", "GRANTS", "IN", "SCHEMA"):
        return AccessStatement(
            "SHOW FUTURE GRANTS", target=GrantTarget("MODEL", tuple(cur.qualified_name(2)), "FUTURE")
        )
    cur.expect_keyword("GRANTS")
    if cur.accept_keyword("ON"):
        return AccessStatement("SHOW GRANTS ON", target=_target(cur))
    if cur.accept_keyword("TO", "ROLE"):
        return AccessStatement("SHOW GRANTS TO ROLE", role=cur.identifier())
    if cur.accept_keyword("TO", "USER"):
        return AccessStatement("SHOW GRANTS TO USER", _principal_name(cur))
    return AccessStatement("SHOW GRANTS TO USER")


def _complete(target: GrantTarget, database: str | None, schema: str | None) -> GrantTarget:
    """Qualify a relative name with the current database and schema."""
    levels = 1 if target.object_type == "COMPUTE_POOL" else 2 if target.scope != "OBJECT" else 3
    missing = levels - len(target.parts)
    if missing <= 0:
        return target
    current = [database, schema][: levels - 1]
    prefix = current[len(current) - missing :] if missing <= len(current) else []
    if len(prefix) != missing or any(p is None for p in prefix):
        raise InvalidArgumentError(
            f"Cannot resolve {target.describe()}: qualify the name (DB.SCHEMA.NAME) or run USE DATABASE / USE SCHEMA "
            "first."
        )
    return GrantTarget(
        target.object_type, (*[p for p in prefix if p is not None], *target.parts), target.scope
    )


def _like(rows: list[list[Any]], pattern: str | None, column: int = 1) -> list[list[Any]]:
    if pattern is None:
        return rows
    glob = pattern.replace("%", "*").replace("_", "?").lower()
    return [r for r in rows if fnmatch.fnmatchcase(str(r[column]).lower(), glob)]


_STATUS = ["status"]


def execute_access(
    session: Session, principal: Principal, stmt: AccessStatement, *, database: str | None, schema: str | None
) -> AccessResult:
    action = stmt.action
    target = _complete(stmt.target, database, schema) if stmt.target is not None else None
    if action in ("GRANT PRIVILEGES", "REVOKE PRIVILEGES"):
        assert target is not None
        if action == "GRANT PRIVILEGES":
            grants.grant_privileges(session, principal, list(stmt.privileges), target, stmt.role)
        else:
            grants.revoke_privileges(session, principal, list(stmt.privileges), target, stmt.role)
        return AccessResult(_STATUS, [["Statement executed successfully."]])
    if action == "SHOW GRANTS ON":
        assert target is not None
        return AccessResult(grants.GRANT_COLUMNS, grants.grants_on(session, principal, target))
    if action == "SHOW GRANTS TO ROLE":
        return AccessResult(grants.GRANT_COLUMNS, grants.grants_to_role(session, principal, stmt.role))
    if action == "SHOW FUTURE GRANTS":
        assert target is not None
        return AccessResult(
            grants.FUTURE_GRANT_COLUMNS, grants.future_grants_in(session, principal, *target.parts)
        )
    if action == "SHOW GRANTS TO USER":
        name = stmt.name or principal.name
        if name.lower() != principal.name.lower():
            require_admin(principal, f"show the roles of user {name}")
        user = users.get_user(session, name)
        rows = [
            [user.created_on.isoformat(), role, "USER", user.name, ""]
            for role in users.roles_of(session, user)
        ]
        return AccessResult(["created_on", "role", "granted_to", "grantee_name", "granted_by"], rows)
    if action == "SHOW ROLES":
        visible = users.list_roles(session)
        if not principal.is_admin:
            visible = [r for r in visible if r.name in principal.roles]
        rows = [[r.created_on.isoformat(), r.name, r.comment or ""] for r in visible]
        return AccessResult(["created_on", "name", "comment"], _like(rows, stmt.like))
    require_admin(
        principal,
        action.lower().replace("show ", "list ").replace("create", "create a").replace("drop", "drop a"),
    )
    if action == "SHOW USERS":
        rows = [
            [
                u.created_on.isoformat(),
                u.name,
                u.default_role,
                "true" if u.password_hash else "false",
                u.comment or "",
            ]
            for u in users.list_users(session)
        ]
        return AccessResult(
            ["created_on", "name", "default_role", "has_password", "comment"], _like(rows, stmt.like)
        )
    return AccessResult(_STATUS, [[_change(session, stmt)]])


def _change(session: Session, stmt: AccessStatement) -> str:
    props = stmt.properties
    if stmt.action == "CREATE USER":
        _, created = users.create_user(
            session,
            stmt.name,
            password=props.get("PASSWORD"),
            default_role=props.get("DEFAULT_ROLE"),
            comment=props.get("COMMENT"),
            if_not_exists=stmt.if_flag,
        )
        return (
            f"User {stmt.name} successfully created."
            if created
            else f"{stmt.name} already exists, statement succeeded."
        )
    if stmt.action == "CREATE ROLE":
        _, created = users.create_role(
            session, stmt.name, comment=props.get("COMMENT"), if_not_exists=stmt.if_flag
        )
        return (
            f"Role {stmt.name} successfully created."
            if created
            else f"{stmt.name} already exists, statement succeeded."
        )
    if stmt.action == "DROP USER":
        dropped = users.drop_user(session, stmt.name, if_exists=stmt.if_flag)
        return f"{stmt.name} successfully dropped." if dropped else "Drop statement executed successfully."
    if stmt.action == "DROP ROLE":
        dropped = users.drop_role(session, stmt.name, if_exists=stmt.if_flag)
        return f"{stmt.name} successfully dropped." if dropped else "Drop statement executed successfully."
    if stmt.action == "ALTER USER":
        user = users.find_user(session, stmt.name)
        if user is None and stmt.if_flag:
            return "Statement executed successfully."
        user = users.get_user(session, stmt.name)
        if "PASSWORD" in props:
            users.set_password(session, user, props["PASSWORD"])
        if "DEFAULT_ROLE" in props:
            user.default_role = users.get_role(session, props["DEFAULT_ROLE"]).name
        if "COMMENT" in props:
            user.comment = props["COMMENT"]
        session.flush()
        return "Statement executed successfully."
    user = users.get_user(session, stmt.name)
    role = users.get_role(session, stmt.role)
    if stmt.action == "GRANT ROLE":
        users.grant_role(session, user, role)
    else:
        users.revoke_role(session, user, role)
    return "Statement executed successfully."
