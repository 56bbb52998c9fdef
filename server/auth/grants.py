"""Privilege grants on models, compute pools and stages, to roles; future grants per schema.

GRANT ... ON ALL MODELS IN SCHEMA grants on each model there now; ON FUTURE MODELS IN SCHEMA
is kept and copied onto each model created there later (as Snowflake does: revoking the
future grant leaves the grants already copied). The creator's role owns what it creates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError, PermissionDeniedError
from runbatch.identifiers import qualified
from server.auth.privileges import (
    GrantedObject,
    display_name,
    object_filter,
    object_type_of,
    require,
    require_admin,
)
from server.auth.tokens import Principal
from server.auth.users import get_role
from server.db.tables import (
    ComputePoolRow,
    FutureGrantRow,
    GrantRow,
    ImageRepositoryRow,
    ModelRow,
    RoleRow,
    StageRow,
)
from server.registry import service as registry
from server.resources import service as resources
from server.stages import service as stages

__all__ = [
    "GRANT_COLUMNS",
    "FUTURE_GRANT_COLUMNS",
    "PRIVILEGES",
    "GrantTarget",
    "future_grants_in",
    "grant_privileges",
    "grants_on",
    "grants_to_role",
    "on_created",
    "resolve_objects",
    "revoke_privileges",
]

PRIVILEGES: dict[str, tuple[str, ...]] = {
    "MODEL": ("OWNERSHIP", "USAGE"),
    "COMPUTE_POOL": ("OWNERSHIP", "USAGE"),
    "STAGE": ("OWNERSHIP", "READ", "USAGE", "WRITE"),
    # Snowflake's: READ pulls images, WRITE pushes them (docs/images.md).
    "IMAGE_REPOSITORY": ("OWNERSHIP", "READ", "WRITE"),
}
GRANT_COLUMNS = [
    "created_on",
    "privilege",
    "granted_on",
    "name",
    "granted_to",
    "grantee_name",
    "grant_option",
    "granted_by",
]
FUTURE_GRANT_COLUMNS = [
    "created_on",
    "privilege",
    "grant_on",
    "name",
    "grant_to",
    "grantee_name",
    "grant_option",
]


@dataclass(frozen=True)
class GrantTarget:
    """What a grant is on: one object (``scope`` OBJECT), or ALL / FUTURE models of a schema."""

    object_type: str  # MODEL, COMPUTE_POOL, STAGE, IMAGE_REPOSITORY
    parts: tuple[str, ...]  # the object's resolved name; ALL / FUTURE: database and schema
    scope: str = "OBJECT"

    def describe(self) -> str:
        if self.scope == "OBJECT":
            return f"{self.object_type.replace('_', ' ')} {qualified(*self.parts)}"
        return f"{self.scope} {self.object_type}S IN SCHEMA {qualified(*self.parts)}"


def _check_privileges(privileges: list[str], target: GrantTarget) -> None:
    allowed = PRIVILEGES[target.object_type]
    for privilege in privileges:
        if privilege not in allowed:
            raise InvalidArgumentError(
                f"Privilege {privilege} cannot be granted on {target.object_type.replace('_', ' ')}: use one of "
                f"{', '.join(allowed)}."
            )
    if target.scope != "OBJECT" and target.object_type != "MODEL":
        raise InvalidArgumentError(
            f"Grants on {target.scope} objects in a schema apply to models only in runbatch; grant on each "
            f"{target.object_type.replace('_', ' ').lower()} by name."
        )
    if "OWNERSHIP" in privileges and len(privileges) > 1:
        raise InvalidArgumentError(
            "GRANT OWNERSHIP cannot be combined with other privileges in one statement."
        )


def resolve_objects(session: Session, target: GrantTarget) -> list[GrantedObject]:
    if target.scope != "OBJECT":
        database, schema = target.parts
        return list(registry.list_models(session, database, schema))
    if target.object_type == "MODEL":
        return [registry.get_model(session, *target.parts)]
    if target.object_type == "COMPUTE_POOL":
        return [resources.get_compute_pool(session, *target.parts)]
    if target.object_type == "IMAGE_REPOSITORY":
        from server.spcs.image_repositories import get_repository  # local: that module imports this one

        return [get_repository(session, *target.parts)]
    return [stages.get_stage(session, *target.parts)]


def _may_grant(
    session: Session, principal: Principal, target: GrantTarget, objects: list[GrantedObject]
) -> None:
    if target.scope != "OBJECT":
        require_admin(principal, f"grant on {target.describe()}")
        return
    for obj in objects:
        require(session, principal, "OWNERSHIP", obj)


def _add(session: Session, role: RoleRow, privilege: str, obj: GrantedObject, granted_by: str) -> None:
    exists = session.scalars(
        select(GrantRow.id).where(
            GrantRow.role_id == role.id,
            GrantRow.privilege == privilege,
            object_filter(obj),
        )
    ).first()
    if exists is not None:
        return
    kind = object_type_of(obj)
    row = GrantRow(role_id=role.id, privilege=privilege, object_type=kind, granted_by=granted_by)
    if kind == "MODEL":
        row.model_id = obj.id
    elif kind == "COMPUTE_POOL":
        row.compute_pool_id = obj.id
    elif kind == "IMAGE_REPOSITORY":
        row.image_repository_id = obj.id
    else:
        row.stage_id = obj.id
    session.add(row)


def _granter(principal: Principal) -> str:
    return principal.owner_role


def grant_privileges(
    session: Session, principal: Principal, privileges: list[str], target: GrantTarget, role_name: str
) -> None:
    _check_privileges(privileges, target)
    role = get_role(session, role_name)
    if target.scope == "FUTURE":
        require_admin(principal, f"grant on {target.describe()}")
        sch = resources.get_schema(session, *target.parts)
        for privilege in privileges:
            found = session.scalars(
                select(FutureGrantRow).where(
                    FutureGrantRow.schema_id == sch.id,
                    FutureGrantRow.object_type == target.object_type,
                    FutureGrantRow.privilege == privilege,
                    FutureGrantRow.role_id == role.id,
                )
            ).first()
            if found is None:
                session.add(
                    FutureGrantRow(
                        schema_id=sch.id,
                        object_type=target.object_type,
                        privilege=privilege,
                        role_id=role.id,
                        granted_by=_granter(principal),
                    )
                )
        session.flush()
        return
    objects = resolve_objects(session, target)
    _may_grant(session, principal, target, objects)
    for obj in objects:
        for privilege in privileges:
            if privilege == "OWNERSHIP":
                # One owner at a time: the grant moves (Snowflake's COPY CURRENT GRANTS keeps the rest).
                session.execute(delete(GrantRow).where(GrantRow.privilege == "OWNERSHIP", object_filter(obj)))
            _add(session, role, privilege, obj, _granter(principal))
    session.flush()


def revoke_privileges(
    session: Session, principal: Principal, privileges: list[str], target: GrantTarget, role_name: str
) -> None:
    _check_privileges(privileges, target)
    if "OWNERSHIP" in privileges:
        raise InvalidArgumentError(
            "OWNERSHIP cannot be revoked; transfer it with GRANT OWNERSHIP ON ... TO ROLE <role>."
        )
    role = get_role(session, role_name)
    if target.scope == "FUTURE":
        require_admin(principal, f"revoke on {target.describe()}")
        sch = resources.get_schema(session, *target.parts)
        session.execute(
            delete(FutureGrantRow).where(
                FutureGrantRow.schema_id == sch.id,
                FutureGrantRow.object_type == target.object_type,
                FutureGrantRow.privilege.in_(privileges),
                FutureGrantRow.role_id == role.id,
            )
        )
        session.flush()
        return
    objects = resolve_objects(session, target)
    _may_grant(session, principal, target, objects)
    for obj in objects:
        session.execute(
            delete(GrantRow).where(
                GrantRow.role_id == role.id,
                GrantRow.privilege.in_(privileges),
                object_filter(obj),
            )
        )
    session.flush()


def on_created(session: Session, principal: Principal, obj: GrantedObject) -> None:
    """The creator's role owns ``obj``; a new model also takes its schema's future grants."""
    _add(session, get_role(session, principal.owner_role), "OWNERSHIP", obj, principal.owner_role)
    if isinstance(obj, ModelRow):
        future = session.scalars(
            select(FutureGrantRow).where(
                FutureGrantRow.schema_id == obj.schema_id, FutureGrantRow.object_type == "MODEL"
            )
        )
        for grant in future:
            role = session.get(RoleRow, grant.role_id)
            assert role is not None
            _add(session, role, grant.privilege, obj, grant.granted_by)
    session.flush()


def _ts(row: Any) -> str:
    return str(row.created_on.isoformat())


def _listing(session: Session, rows: list[GrantRow]) -> list[list[Any]]:
    out = []
    for g in rows:
        role = session.get(RoleRow, g.role_id)
        assert role is not None
        obj = _object_of(session, g)
        out.append(
            [
                _ts(g),
                g.privilege,
                g.object_type,
                display_name(session, obj),
                "ROLE",
                role.name,
                "false",
                g.granted_by,
            ]
        )
    return out


def _object_of(session: Session, grant: GrantRow) -> GrantedObject:
    found: GrantedObject | None
    if grant.model_id is not None:
        found = session.get(ModelRow, grant.model_id)
    elif grant.compute_pool_id is not None:
        found = session.get(ComputePoolRow, grant.compute_pool_id)
    elif grant.image_repository_id is not None:
        found = session.get(ImageRepositoryRow, grant.image_repository_id)
    else:
        found = session.get(StageRow, grant.stage_id)
    assert found is not None
    return found


def grants_on(session: Session, principal: Principal, target: GrantTarget) -> list[list[Any]]:
    """SHOW GRANTS ON <object>: for its owner or ACCOUNTADMIN; others see it exists only if they hold a grant."""
    (obj,) = resolve_objects(session, target)
    require(
        session, principal, "READ" if target.object_type in ("STAGE", "IMAGE_REPOSITORY") else "USAGE", obj
    )
    rows = list(session.scalars(select(GrantRow).where(object_filter(obj)).order_by(GrantRow.id)))
    return _listing(session, rows)


def grants_to_role(session: Session, principal: Principal, role_name: str) -> list[list[Any]]:
    role = get_role(session, role_name)
    if not principal.is_admin and role.name not in principal.roles:
        raise PermissionDeniedError(
            f"Insufficient privileges to show the grants to role {role.name}: it is not one of {principal.name}'s "
            "roles."
        )
    rows = list(session.scalars(select(GrantRow).where(GrantRow.role_id == role.id).order_by(GrantRow.id)))
    return _listing(session, rows)


def future_grants_in(session: Session, principal: Principal, database: str, schema: str) -> list[list[Any]]:
    require_admin(principal, f"show the future grants in schema {qualified(database, schema)}")
    sch = resources.get_schema(session, database, schema)
    rows = session.scalars(
        select(FutureGrantRow).where(FutureGrantRow.schema_id == sch.id).order_by(FutureGrantRow.id)
    )
    out = []
    for g in rows:
        role = session.get(RoleRow, g.role_id)
        assert role is not None
        out.append(
            [
                _ts(g),
                g.privilege,
                g.object_type,
                f"{qualified(database, schema)}.<{g.object_type}>",
                "ROLE",
                role.name,
                "false",
            ]
        )
    return out
