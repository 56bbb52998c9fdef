"""Image repositories over REST, and the registry's token realm (GET /registry/token)."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from runbatch.errors import AuthenticationError, InvalidArgumentError
from server.auth.tokens import Principal, authenticate
from server.control_plane import ControlPlane
from server.db.tables import ImageRepositoryRow
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.image_registry.client import list_images
from server.image_registry.keys import load_signing_key
from server.image_registry.tokens import parse_scopes, sign_token
from server.spcs import image_repositories as repos

__all__ = ["ImageRepositoryCreate", "ImageRepositoryPublic", "RegistryToken", "router"]

router = APIRouter(tags=["image repositories"])

# docker asks again when a token expires; five minutes covers the layers of one push.
TOKEN_TTL_S = 300


class ImageRepositoryCreate(BaseModel):
    name: str = Field(description="The repository's name (resolved: upper case unless it was quoted)")
    comment: str | None = None


class ImageRepositoryPublic(BaseModel):
    name: str
    database_name: str
    schema_name: str
    repository_url: str = Field(description="What `docker login`, `docker tag` and `docker push` take")
    owner: str
    comment: str | None
    created_on: datetime


class ImageTagPublic(BaseModel):
    image_name: str
    tag: str
    digest: str
    image_path: str = Field(description="/db/schema/repo/image:tag, as a service specification names it")
    created_on: str


class RegistryToken(BaseModel):
    token: str
    access_token: str
    expires_in: int
    issued_at: str


def _public(session: Session, cp: ControlPlane, row: ImageRepositoryRow) -> ImageRepositoryPublic:
    schema = row.schema
    return ImageRepositoryPublic(
        name=row.name,
        database_name=schema.database.name,
        schema_name=schema.name,
        repository_url=repos.repository_url(cp, row),
        owner=repos.owner_role(session, row),
        comment=row.comment,
        created_on=row.created_on,
    )


_BASE = "/databases/{database}/schemas/{schema}/image-repositories"


@router.get(_BASE)
def list_image_repositories(
    database: str, schema: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> list[ImageRepositoryPublic]:
    """The schema's repositories the caller holds a privilege on (all of them for ACCOUNTADMIN)."""
    return [_public(session, cp, r) for r in repos.list_repositories(session, user, database, schema)]


@router.post(_BASE, status_code=status.HTTP_201_CREATED)
def create_image_repository(
    database: str,
    schema: str,
    body: ImageRepositoryCreate,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
) -> ImageRepositoryPublic:
    row, _ = repos.create_repository(
        session, cp, user, database=database, schema=schema, name=body.name, comment=body.comment
    )
    public = _public(session, cp, row)
    session.commit()
    return public


@router.get(_BASE + "/{name}")
def get_image_repository(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> ImageRepositoryPublic:
    return _public(session, cp, repos.get_visible_repository(session, user, database, schema, name))


@router.delete(_BASE + "/{name}", status_code=status.HTTP_204_NO_CONTENT)
def drop_image_repository(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> None:
    """Drops the repository and deletes its images from the registry (the owner role or ACCOUNTADMIN)."""
    repos.drop_repository(session, cp, user, database, schema, name)
    session.commit()


@router.get(_BASE + "/{name}/images")
def list_repository_images(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> list[ImageTagPublic]:
    """The images of the repository and their tags, read from the registry."""
    row = repos.get_repository(session, database, schema, name)
    repos.require_pull(session, user, row)
    path = repos.repository_path(database, schema, row.name)
    session.close()  # the registry may be slow; the metadata connection is not needed for it
    images = list_images(
        cp.settings.home,
        registry=repos.registry_host(cp),
        service=cp.settings.registry_service,
        repository=path,
    )
    return [
        ImageTagPublic(
            image_name=i.name, tag=i.tag, digest=i.digest, image_path=i.path, created_on=i.created_on
        )
        for i in images
    ]


def _caller(request: Request, cp: ControlPlane) -> Principal:
    """docker sends the `docker login` password (a runbatch token) as HTTP basic auth; a bearer token
    works too. The user name is not checked: the token says who calls."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    secret = ""
    if scheme.lower() == "bearer":
        secret = value.strip()
    elif scheme.lower() == "basic":
        try:
            secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
        except (binascii.Error, UnicodeDecodeError):
            secret = ""
    if not secret:
        raise AuthenticationError(
            "Missing bearer token or basic credentials: `docker login <registry>` with any user name and a "
            "runbatch API token as the password, or send 'Authorization: Bearer <token>'."
        )
    with cp.read_sessionmaker() as session:
        return authenticate(session, secret)


@router.get("/registry/token")
def registry_token(
    request: Request,
    session: SessionDep,
    cp: ControlPlaneDep,
    service: str | None = None,
    scope: Annotated[list[str] | None, Query()] = None,
) -> RegistryToken:
    """The registry's token realm: a token granting what the caller may do of the requested scopes
    (push and pull on repositories it owns; nothing on paths outside an existing repository)."""
    principal = _caller(request, cp)
    if service is None:
        service = cp.settings.registry_service  # `docker login` asks without one on some versions
    if service != cp.settings.registry_service:
        raise InvalidArgumentError(
            f"This control plane issues registry tokens for service {cp.settings.registry_service!r}, not "
            f"{service!r}: set auth.token.service of the registry to it (RUNBATCH_REGISTRY_SERVICE)."
        )
    access = []
    for item in parse_scopes(scope or []):
        granted = repos.granted_actions(session, principal, item)
        # A scope granted nothing is listed with no actions, as distribution's own token servers do;
        # the registry then answers the client 401 for it.
        access.append(item.claim(granted))
    now = datetime.now(UTC)
    token = sign_token(
        load_signing_key(cp.settings.home),
        subject=principal.name,
        audience=service,
        access=access,
        ttl_s=TOKEN_TTL_S,
        now=now.timestamp(),
    )
    return RegistryToken(token=token, access_token=token, expires_in=TOKEN_TTL_S, issued_at=now.isoformat())
