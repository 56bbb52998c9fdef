"""Privilege grants over REST, the same operations as GRANT / REVOKE / SHOW GRANTS in SQL."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, status

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import parse_qualified_name, resolve_identifier
from runbatch.wire.auth import GrantPublic, GrantRequest
from server.auth import grants
from server.auth.grants import GrantTarget
from server.deps import SessionDep, UserDep

router = APIRouter(tags=["grants"])


def _target(object_type: str, name: str, scope: str) -> GrantTarget:
    levels = 2 if scope != "OBJECT" else 1 if object_type == "COMPUTE_POOL" else 3
    parts = parse_qualified_name(name, max_parts=levels)
    if len(parts) != levels:
        raise InvalidArgumentError(
            f"{name!r} must be fully qualified here: "
            + ("DB.SCHEMA" if levels == 2 else "DB.SCHEMA.NAME" if levels == 3 else "a compute pool name")
            + "."
        )
    return GrantTarget(object_type, tuple(parts), scope)


def _public(row: list[object]) -> GrantPublic:
    return GrantPublic(**{c: str(v) for c, v in zip(grants.GRANT_COLUMNS, row, strict=True)})


@router.post("/grants", status_code=status.HTTP_204_NO_CONTENT)
def grant(body: GrantRequest, session: SessionDep, user: UserDep) -> None:
    """GRANT <privilege> ON <object> | ALL / FUTURE MODELS IN SCHEMA TO ROLE <role>."""
    target = _target(body.object_type, body.name, body.scope)
    grants.grant_privileges(session, user, [body.privilege.upper()], target, resolve_identifier(body.role))
    session.commit()


@router.post("/grants/revoke", status_code=status.HTTP_204_NO_CONTENT)
def revoke(body: GrantRequest, session: SessionDep, user: UserDep) -> None:
    """REVOKE <privilege> ON ... FROM ROLE <role>."""
    target = _target(body.object_type, body.name, body.scope)
    grants.revoke_privileges(session, user, [body.privilege.upper()], target, resolve_identifier(body.role))
    session.commit()


@router.get("/grants")
def list_grants(
    session: SessionDep,
    user: UserDep,
    role: str | None = None,
    object_type: Literal["MODEL", "COMPUTE_POOL", "STAGE", "IMAGE_REPOSITORY"] | None = None,
    name: str | None = None,
) -> list[GrantPublic]:
    """SHOW GRANTS TO ROLE (``role``) or ON an object (``object_type`` and ``name``)."""
    if role is not None and object_type is None and name is None:
        return [_public(r) for r in grants.grants_to_role(session, user, resolve_identifier(role))]
    if role is None and object_type is not None and name is not None:
        return [_public(r) for r in grants.grants_on(session, user, _target(object_type, name, "OBJECT"))]
    raise InvalidArgumentError(
        "List grants either to a role (?role=R) or on one object (?object_type=MODEL&name=DB.S.M)."
    )
