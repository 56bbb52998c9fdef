"""Model services: create, list and drop a version's inference services, and call their functions."""

from __future__ import annotations

import anyio.from_thread
import httpx
from fastapi import APIRouter, Request, Response, status

from runbatch.errors import InternalError, InvalidArgumentError, ServiceUnavailableError
from runbatch.wire.model_services import INFERENCE_ENDPOINT, ModelServiceCreate, ModelServicePublic
from server.api.services import endpoint_path
from server.auth import privileges
from server.db.tables import ServiceRow
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.errors import ERROR_RESPONSES
from server.resources import service as resources
from server.spcs import model_service
from server.spcs import service as spcs

__all__ = ["router"]

router = APIRouter(tags=["model services"], responses=ERROR_RESPONSES)

_VERSION = "/databases/{database}/schemas/{schema}/models/{model}/versions/{version}"
# Inference can take long (a large model, a large request); the connection itself is quick.
_TIMEOUT = httpx.Timeout(10.0, read=600.0)


@router.post(_VERSION + "/services", status_code=status.HTTP_201_CREATED, summary="Create a model service")
def create_model_service(
    database: str,
    schema: str,
    model: str,
    version: str,
    body: ModelServiceCreate,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
) -> ModelServicePublic:
    """Start an online inference server for the version (``ModelVersion.create_service``); it is PENDING
    until a worker runs it and READY once the model is loaded. It needs OWNERSHIP of the model (a
    service runs the model for everyone with USAGE) and USAGE on the compute pool."""
    row = privileges.version_for(session, user, "OWNERSHIP", database, schema, model, version)
    if not user.is_admin:
        privileges.require(session, user, "USAGE", resources.get_compute_pool(session, body.compute_pool))
    service = model_service.create_model_service(session, cp, user, row, body)
    public = _public(cp.url, service)
    session.commit()
    dispatcher = cp.dispatcher
    assert isinstance(dispatcher, spcs.ServiceDispatcher)  # recording the service checked it
    dispatcher.dispatch_service(service.compute_pool, service.id)
    return public


@router.get(_VERSION + "/services", summary="List a model version's services")
def list_model_services(
    database: str,
    schema: str,
    model: str,
    version: str,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
) -> list[ModelServicePublic]:
    """The version's services; USAGE on the model sees them all, whoever created them."""
    row = privileges.version_for(session, user, "USAGE", database, schema, model, version)
    return [_public(cp.url, s) for s in model_service.list_model_services(session, row)]


@router.delete(
    _VERSION + "/services/{service_database}/{service_schema}/{service}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Drop a model service",
)
def delete_model_service(
    database: str,
    schema: str,
    model: str,
    version: str,
    service_database: str,
    service_schema: str,
    service: str,
    session: SessionDep,
    user: UserDep,
) -> None:
    """Drop one of the version's services: it needs OWNERSHIP of the model, as creating one does."""
    row = privileges.version_for(session, user, "OWNERSHIP", database, schema, model, version)
    model_service.delete_model_service(session, row, service_database, service_schema, service)
    session.commit()


@router.post(
    "/services/{database}/{schema}/{service}/functions/{function}",
    summary="Call a model service's function (Snowflake's {\"data\": [[row_index, args...]]} protocol)",
)
def call_model_service(
    database: str,
    schema: str,
    service: str,
    function: str,
    request: Request,
    session: SessionDep,
    user: UserDep,
) -> Response:
    """Forward rows to one of the service's functions; its endpoint need not be public (ingress_enabled).
    It needs USAGE on the service's model."""
    row, address, path = model_service.inference_address(session, user, database, schema, service, function)
    name = row.name
    session.close()  # inference may take long; the metadata connection is not needed for it
    try:
        upstream = httpx.post(
            f"http://{address}{path}",
            content=anyio.from_thread.run(request.body),  # this route runs in a worker thread
            headers={"Content-Type": "application/json"},
            timeout=_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise ServiceUnavailableError(
            f"The inference server of service {name} did not answer: {exc}"
        ) from None
    if upstream.is_success:
        return Response(upstream.content, media_type="application/json")
    try:
        why = str(upstream.json()["error"])
    except (ValueError, KeyError, TypeError):
        why = f"HTTP {upstream.status_code}: {upstream.text[:500]}"
    if upstream.status_code < 500:
        raise InvalidArgumentError(f"Service {name} refused the request: {why}")
    raise InternalError(f"Service {name} failed: {why}")


def _public(base_url: str | None, row: ServiceRow) -> ModelServicePublic:
    schema = row.schema
    path = endpoint_path(schema.database.name, schema.name, row.name, INFERENCE_ENDPOINT)
    return model_service.public(row, base_url, path)
