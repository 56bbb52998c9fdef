"""Every privilege check of the control plane: ``require`` and the visibility filters.

ACCOUNTADMIN holds every privilege. Otherwise a caller acts with all the roles granted to its
user (Snowflake's secondary roles ALL), PUBLIC included. A model the caller holds no privilege
on does not exist for it (404, as in Snowflake); a missing privilege on a model it can see, on a
compute pool or on a stage is a 403 naming the privilege.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, select
from sqlalchemy.orm import Session

from runbatch.errors import NotFoundError, PermissionDeniedError
from runbatch.identifiers import qualified
from runbatch.stage.paths import StagePath, parse_stage_path
from runbatch.wire.jobs import JobCreate, QueryInput, StageInput
from server.auth.tokens import ROLE_USER, Principal
from server.db.tables import (
    ComputePoolRow,
    GrantRow,
    ImageRepositoryRow,
    JobRow,
    ModelRow,
    ModelVersionRow,
    RoleRow,
    SchemaRow,
    StageRow,
)
from server.registry import service as registry
from server.resources import service as resources
from server.stages import service as stages

__all__ = [
    "USER_ENDPOINTS",
    "authorize_endpoint",
    "model_for",
    "version_for",
    "GrantedObject",
    "display_name",
    "held_privileges",
    "may_see_job",
    "object_filter",
    "object_type_of",
    "require",
    "require_admin",
    "require_job",
    "require_job_submit",
    "require_query",
    "require_stage",
    "visible_models",
]

GrantedObject = ModelRow | ComputePoolRow | StageRow | ImageRepositoryRow
_M = TypeVar("_M", bound=GrantedObject)

# What each privilege a check asks for is satisfied by (OWNERSHIP implies every privilege).
_SATISFIED_BY: dict[str, frozenset[str]] = {
    "USAGE": frozenset({"USAGE", "OWNERSHIP"}),
    "OWNERSHIP": frozenset({"OWNERSHIP"}),
    "READ": frozenset({"READ", "WRITE", "USAGE", "OWNERSHIP"}),
    "WRITE": frozenset({"WRITE", "USAGE", "OWNERSHIP"}),
}


def object_type_of(obj: GrantedObject) -> str:
    if isinstance(obj, ModelRow):
        return "MODEL"
    if isinstance(obj, ComputePoolRow):
        return "COMPUTE_POOL"
    if isinstance(obj, ImageRepositoryRow):
        return "IMAGE_REPOSITORY"
    return "STAGE"


def object_filter(obj: GrantedObject) -> ColumnElement[bool]:
    """The WHERE clause selecting the grants on ``obj``."""
    if isinstance(obj, ModelRow):
        return GrantRow.model_id == obj.id
    if isinstance(obj, ComputePoolRow):
        return GrantRow.compute_pool_id == obj.id
    if isinstance(obj, ImageRepositoryRow):
        return GrantRow.image_repository_id == obj.id
    return GrantRow.stage_id == obj.id


def display_name(session: Session, obj: GrantedObject) -> str:
    if isinstance(obj, ComputePoolRow):
        return qualified(obj.name)
    schema = session.get(SchemaRow, obj.schema_id)
    assert schema is not None
    return qualified(schema.database.name, schema.name, obj.name)


def held_privileges(session: Session, principal: Principal, obj: GrantedObject) -> set[str]:
    """The privileges on ``obj`` held by any of the caller's roles."""
    query = (
        select(GrantRow.privilege)
        .join(RoleRow, RoleRow.id == GrantRow.role_id)
        .where(object_filter(obj), RoleRow.name.in_(sorted(principal.roles)))
    )
    return set(session.scalars(query))


def require_admin(principal: Principal, action: str) -> None:
    if not principal.is_admin:
        raise PermissionDeniedError(
            f"Insufficient privileges to {action}: it needs the ACCOUNTADMIN role, which {principal.name} does "
            "not hold."
        )


def require(session: Session, principal: Principal, privilege: str, obj: _M) -> _M:
    """``obj`` if the caller holds ``privilege`` on it; otherwise 403, or 404 for a model it cannot see."""
    if principal.is_admin:
        return obj
    held = held_privileges(session, principal, obj)
    if held & _SATISFIED_BY[privilege]:
        return obj
    kind = object_type_of(obj).replace("_", " ").lower()
    if isinstance(obj, ModelRow) and not held:
        raise NotFoundError(f"Unable to find model {display_name(session, obj)}")
    raise PermissionDeniedError(
        f"Insufficient privileges to operate on {kind} {display_name(session, obj)}: it needs the {privilege} privilege "
        f"(or OWNERSHIP), which no role of {principal.name} holds. An owner or ACCOUNTADMIN can grant it: "
        f"GRANT {privilege} ON {kind.upper()} {display_name(session, obj)} TO ROLE <role>."
    )


def visible_models(session: Session, principal: Principal, models: Iterable[ModelRow]) -> list[ModelRow]:
    """The models the caller holds any privilege on (all of them for ACCOUNTADMIN), order kept."""
    listed = list(models)
    if principal.is_admin or not listed:
        return listed
    query = (
        select(GrantRow.model_id)
        .join(RoleRow, RoleRow.id == GrantRow.role_id)
        .where(GrantRow.model_id.is_not(None), RoleRow.name.in_(sorted(principal.roles)))
    )
    seen = set(session.scalars(query))
    return [m for m in listed if m.id in seen]


def require_stage(session: Session, principal: Principal, privilege: str, path: StagePath) -> None:
    """READ (list, download, query) or WRITE (upload, remove, unload) on the stage of ``path``."""
    if not principal.is_admin:
        require(
            session, principal, privilege, stages.get_stage(session, path.database, path.schema, path.stage)
        )


def may_see_job(principal: Principal, job: JobRow) -> bool:
    """A job is its owner's (and ACCOUNTADMIN's): the submitter already needed USAGE on its model and pool."""
    return principal.is_admin or job.owner == principal.name


def require_job(principal: Principal, job: JobRow) -> JobRow:
    if not may_see_job(principal, job):
        raise NotFoundError(
            f"Job {qualified(job.schema.database.name, job.schema.name, job.name)} does not exist or not authorized."
        )
    return job


def model_for(
    session: Session, principal: Principal, privilege: str, database: str, schema: str, name: str
) -> ModelRow:
    """The model, if the caller holds ``privilege`` on it (404 when it holds none, as if it did not exist)."""
    return require(session, principal, privilege, registry.get_model(session, database, schema, name))


def version_for(
    session: Session,
    principal: Principal,
    privilege: str,
    database: str,
    schema: str,
    model: str,
    version: str,
) -> ModelVersionRow:
    model_for(session, principal, privilege, database, schema, model)
    return registry.get_version(session, database, schema, model, version)


# The routes a caller without ACCOUNTADMIN may call, by endpoint; each checks its objects itself.
# Every other route, including ones added later, answers 403 to such a caller: secure by default.
USER_ENDPOINTS = frozenset(
    {
        "server.app.create_app.<locals>.openapi",
        "server.api.auth.post_logout",
        "server.api.auth.get_me",
        "server.api.auth.create_token",
        "server.api.auth.list_tokens",
        "server.api.auth.revoke_token",
        "server.api.users.get_user",
        "server.api.users.list_roles",
        "server.api.grants.grant",
        "server.api.grants.revoke",
        "server.api.grants.list_grants",
        "server.api.sql.run_sql",
        "server.api.resources.list_databases",
        "server.api.resources.get_database",
        "server.api.resources.list_schemas",
        "server.api.resources.get_schema",
        "server.api.resources.list_compute_pools",
        "server.api.resources.get_compute_pool",
        "server.api.stage_files.list_stage_files",
        "server.api.stage_files.upload_stage_file",
        "server.api.stage_files.download_stage_file",
        "server.api.stage_files.delete_stage_file",
        "server.api.models.list_models",
        "server.api.models.get_model",
        "server.api.models.update_model",
        "server.api.models.delete_model",
        "server.api.models.add_version",
        "server.api.models.list_versions",
        "server.api.models.get_version",
        "server.api.models.update_version",
        "server.api.models.delete_version",
        "server.api.models.download_version",
        "server.api.models.set_metric",
        "server.api.models.delete_metric",
        "server.api.models.set_alias",
        "server.api.models.unset_alias",
        "server.api.models.set_tag",
        "server.api.models.unset_tag",
        "server.api.model_functions.list_functions",
        "server.api.jobs.submit_job",
        "server.api.jobs.start_job",
        "server.api.jobs.list_jobs",
        "server.api.jobs.get_job",
        "server.api.jobs.cancel_job",
        "server.api.jobs.delete_job",
        "server.api.jobs.get_logs",
        "server.api.jobs.list_shards",
        "server.api.job_results.job_outputs",
        "server.api.job_results.job_errors",
        "server.api.image_repositories.list_image_repositories",
        "server.api.image_repositories.create_image_repository",
        "server.api.image_repositories.get_image_repository",
        "server.api.image_repositories.drop_image_repository",
        "server.api.image_repositories.list_repository_images",
        "server.api.image_repositories.registry_token",
        "server.api.model_services.create_model_service",
        "server.api.model_services.list_model_services",
        "server.api.model_services.delete_model_service",
        "server.api.model_services.call_model_service",
    }
)


def authorize_endpoint(principal: Principal, endpoint: Callable[..., Any] | None) -> None:
    """Refuse a caller without ACCOUNTADMIN any route not opened to users in USER_ENDPOINTS."""
    if principal.role != ROLE_USER:
        return  # ADMIN passes; a SHARD token is confined to its shard by the shard routes
    name = f"{endpoint.__module__}.{endpoint.__qualname__}" if endpoint is not None else ""
    if name not in USER_ENDPOINTS:
        require_admin(principal, "call this route")


def require_job_submit(session: Session, principal: Principal, body: JobCreate) -> None:
    """run_batch needs USAGE on the model and the compute pool, READ on a stage input, WRITE on the output."""
    if principal.is_admin:
        return
    ref = body.model
    model_for(session, principal, "USAGE", ref.database, ref.schema_, ref.name)
    require(session, principal, "USAGE", resources.get_compute_pool(session, body.compute_pool))
    where = {"database": body.database, "schema": body.schema_}
    output = body.output_spec.stage_location or body.output_spec.base_stage_location
    assert output is not None  # OutputSpec requires one of them
    require_stage(session, principal, "WRITE", parse_stage_path(output, **where))
    if isinstance(body.input, StageInput):
        require_stage(session, principal, "READ", parse_stage_path(body.input.location, **where))
    elif isinstance(body.input, QueryInput):
        require_query(principal)


def require_query(principal: Principal) -> None:
    """Queries and COPY INTO read tables and stages, which have no grants here yet: ACCOUNTADMIN only."""
    require_admin(principal, "run a query (SELECT, WITH, COPY INTO); grants on tables are not supported yet")
