"""Models, versions, metrics, aliases and tags."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from runbatch.errors import NotFoundError
from runbatch.wire.registry import ModelPublic, ModelUpdate, ModelVersionPublic, VersionUpdate
from server.auth import grants, privileges
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.registry import service as registry

router = APIRouter(tags=["models"])

_MODELS = "/databases/{database}/schemas/{schema}/models"
_MODEL = _MODELS + "/{model}"
_VERSION = _MODEL + "/versions/{version}"


class MetricValue(BaseModel):
    value: Any


class AliasTarget(BaseModel):
    version: str


class TagValue(BaseModel):
    value: str


@router.get(_MODELS)
def list_models(database: str, schema: str, session: SessionDep, user: UserDep) -> list[ModelPublic]:
    return [
        registry.model_public(m)
        for m in privileges.visible_models(session, user, registry.list_models(session, database, schema))
    ]


@router.get(_MODEL)
def get_model(database: str, schema: str, model: str, session: SessionDep, user: UserDep) -> ModelPublic:
    return registry.model_public(privileges.model_for(session, user, "USAGE", database, schema, model))


@router.patch(_MODEL)
def update_model(
    database: str, schema: str, model: str, body: ModelUpdate, session: SessionDep, user: UserDep
) -> ModelPublic:
    row = privileges.model_for(session, user, "OWNERSHIP", database, schema, model)
    fields = body.model_fields_set
    if "comment" in fields:
        row.comment = body.comment
    if "default_version" in fields and body.default_version is not None:
        registry.set_default(session, row, body.default_version)
    session.commit()
    return registry.model_public(row)


@router.delete(_MODEL, status_code=status.HTTP_204_NO_CONTENT)
def delete_model(
    database: str, schema: str, model: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> None:
    key = registry.delete_model(
        session, privileges.model_for(session, user, "OWNERSHIP", database, schema, model)
    )
    session.commit()
    cp.storage.delete_tree(key)


def _add_version(
    cp: ControlPlane,
    user: Principal,
    database: str,
    schema: str,
    model: str,
    version_name: str | None,
    spool: Any,
) -> ModelVersionPublic:
    # Three short steps, so no transaction is open while a large model is copied into storage.
    with cp.read_sessionmaker() as session:
        # A new version of an existing model takes its OWNERSHIP; a new model is open to every user.
        if any(m.name == model for m in registry.list_models(session, database, schema)):
            privileges.model_for(session, user, "OWNERSHIP", database, schema, model)
        registry.check_new_version(session, database, schema, model, version_name)
    artifact = registry.store_artifact(cp.storage, database, schema, model, registry.ArtifactUpload(spool))
    try:
        with cp.sessionmaker() as session:
            row = registry.add_version(
                session,
                database=database,
                schema=schema,
                model_name=model,
                version_name=version_name,
                owner=user.name,
                artifact=artifact,
            )
            if len(row.model.versions) == 1:  # the model was created just now
                grants.on_created(session, user, row.model)
            session.commit()
            return registry.version_public(row)
    except BaseException:
        cp.storage.delete_tree(artifact.key)
        raise


@router.post(_MODEL + "/versions", status_code=status.HTTP_201_CREATED)
async def add_version(
    database: str,
    schema: str,
    model: str,
    request: Request,
    cp: ControlPlaneDep,
    user: UserDep,
    version_name: str | None = None,
) -> ModelVersionPublic:
    """Add a version from the uncompressed tar of a folder made by ``log_model`` (MANIFEST.yml + model/)."""
    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as spool:
        async for chunk in request.stream():
            await run_in_threadpool(spool.write, chunk)
        spool.seek(0)
        return await run_in_threadpool(_add_version, cp, user, database, schema, model, version_name, spool)


@router.get(_MODEL + "/versions")
def list_versions(
    database: str, schema: str, model: str, session: SessionDep, user: UserDep
) -> list[ModelVersionPublic]:
    row = privileges.model_for(session, user, "USAGE", database, schema, model)
    return [registry.version_public(v) for v in row.versions]


@router.get(_VERSION)
def get_version(
    database: str, schema: str, model: str, version: str, session: SessionDep, user: UserDep
) -> ModelVersionPublic:
    """A version by name or alias (DEFAULT, FIRST, LAST or a user alias)."""
    return registry.version_public(
        privileges.version_for(session, user, "USAGE", database, schema, model, version)
    )


@router.patch(_VERSION)
def update_version(
    database: str,
    schema: str,
    model: str,
    version: str,
    body: VersionUpdate,
    session: SessionDep,
    user: UserDep,
) -> ModelVersionPublic:
    row = privileges.version_for(session, user, "OWNERSHIP", database, schema, model, version)
    if "comment" in body.model_fields_set:
        row.comment = body.comment
    session.commit()
    return registry.version_public(row)


@router.delete(_VERSION, status_code=status.HTTP_204_NO_CONTENT)
def delete_version(
    database: str,
    schema: str,
    model: str,
    version: str,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
) -> None:
    row = privileges.model_for(session, user, "OWNERSHIP", database, schema, model)
    key = registry.delete_version(session, row, version)
    session.commit()
    cp.storage.delete_tree(key)


@router.get(_VERSION + "/artifact")
def download_version(
    database: str,
    schema: str,
    model: str,
    version: str,
    cp: ControlPlaneDep,
    user: UserDep,
    subtree: str = "",
) -> StreamingResponse:
    """The version folder (or one subtree, e.g. ``model``) as an uncompressed tar stream."""
    with cp.sessionmaker() as session:
        row = privileges.version_for(session, user, "OWNERSHIP", database, schema, model, version)
        session.expunge(row)
    return StreamingResponse(
        registry.iter_artifact(cp.storage, row, subtree=subtree), media_type="application/x-tar"
    )


@router.put(_VERSION + "/metrics/{name}")
def set_metric(
    database: str,
    schema: str,
    model: str,
    version: str,
    name: str,
    body: MetricValue,
    session: SessionDep,
    user: UserDep,
) -> ModelVersionPublic:
    row = privileges.version_for(session, user, "OWNERSHIP", database, schema, model, version)
    row.metrics = {**(row.metrics or {}), name: body.value}
    session.commit()
    return registry.version_public(row)


@router.delete(_VERSION + "/metrics/{name}")
def delete_metric(
    database: str, schema: str, model: str, version: str, name: str, session: SessionDep, user: UserDep
) -> ModelVersionPublic:
    row = privileges.version_for(session, user, "OWNERSHIP", database, schema, model, version)
    if name not in (row.metrics or {}):
        raise NotFoundError(f"Cannot find metric with name {name}.")
    row.metrics = {k: v for k, v in row.metrics.items() if k != name}
    session.commit()
    return registry.version_public(row)


@router.put(_MODEL + "/aliases/{alias}")
def set_alias(
    database: str, schema: str, model: str, alias: str, body: AliasTarget, session: SessionDep, user: UserDep
) -> ModelPublic:
    row = privileges.model_for(session, user, "OWNERSHIP", database, schema, model)
    registry.set_alias(session, row, body.version, alias)
    session.commit()
    return registry.model_public(row)


@router.delete(_MODEL + "/aliases/{alias}")
def unset_alias(
    database: str, schema: str, model: str, alias: str, session: SessionDep, user: UserDep
) -> ModelPublic:
    """Remove an alias, named directly or through its version."""
    row = privileges.model_for(session, user, "OWNERSHIP", database, schema, model)
    registry.unset_alias(session, row, alias)
    session.commit()
    return registry.model_public(row)


@router.put(_MODEL + "/tags/{tag}")
def set_tag(
    database: str, schema: str, model: str, tag: str, body: TagValue, session: SessionDep, user: UserDep
) -> ModelPublic:
    row = privileges.model_for(session, user, "OWNERSHIP", database, schema, model)
    registry.set_tag(session, row, tag, body.value)
    session.commit()
    return registry.model_public(row)


@router.delete(_MODEL + "/tags/{tag}")
def unset_tag(
    database: str, schema: str, model: str, tag: str, session: SessionDep, user: UserDep
) -> ModelPublic:
    row = privileges.model_for(session, user, "OWNERSHIP", database, schema, model)
    registry.unset_tag(session, row, tag)
    session.commit()
    return registry.model_public(row)
