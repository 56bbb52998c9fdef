"""Image repositories: namespaces of the cluster's OCI registry, and who may push and pull there.

A repository ``DB.SCHEMA.REPO`` is the registry path ``<registry host>/db/schema/repo`` (lower case,
as Snowflake's ``repository_url``); images live below it (``.../repo/my-image:1.0``). The registry
asks the control plane for a token on every push and pull (server/api/image_repositories.py), and
the control plane grants actions only on paths under a repository that exists:

- delete (and ``*``): ACCOUNTADMIN and a caller holding the repository's owner role, the role its
  OWNERSHIP grant names (the creator's, until GRANT OWNERSHIP moves it);
- push (and pull): those, and a role granted WRITE on it;
- pull: also a role granted READ on it (``GRANT READ ON IMAGE REPOSITORY r TO ROLE x``).

A path is never shared: two repositories whose names differ only in case cannot both exist, and
DROP (and CREATE, for repositories that went with their schema or database) deletes what the
registry holds on the path, so a repository created again starts empty.

A service specification names an image as ``/db/schema/repo/image:tag``; the caller creating the
service must be allowed to pull it, and the worker that runs it gets a pull-only token for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, PermissionDeniedError
from runbatch.identifiers import qualified
from server.auth import grants, privileges
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import DatabaseRow, GrantRow, ImageRepositoryRow, RoleRow, SchemaRow
from server.image_registry.client import delete_images
from server.image_registry.keys import load_signing_key
from server.image_registry.tokens import KNOWN_ACTIONS, Scope, sign_token
from server.resources import service as resources

__all__ = [
    "PULL_TOKEN_TTL_S",
    "RegistryImage",
    "create_repository",
    "drop_repository",
    "get_repository",
    "get_visible_repository",
    "granted_actions",
    "list_repositories",
    "may",
    "owner_role",
    "pull_token",
    "registry_host",
    "repository_path",
    "repository_url",
    "require_pull",
    "resolve_image",
]

# A worker pulls when a container starts; an hour covers a slow pull of a large image.
PULL_TOKEN_TTL_S = 3600
# One path component of an OCI repository name (the distribution spec's grammar).
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
# /db/schema/repo/image[/more][:tag | @digest], as Snowflake's specifications name images.
_IMAGE_PATH = re.compile(
    r"^/(?P<path>[^:@]+)(?P<ref>(?::[\w][\w.-]{0,127})?(?:@[A-Za-z0-9_+.-]+:[0-9a-fA-F]+)?)$"
)
_NO_REGISTRY = (
    "This control plane has no image registry: start one with scripts/registry and set "
    "RUNBATCH_REGISTRY_HOST=<host:port> on the control plane."
)


def registry_host(cp: ControlPlane) -> str:
    host = cp.settings.registry_host
    if not host:
        raise InvalidArgumentError(_NO_REGISTRY)
    return host


def _path_component(part: str, what: str) -> str:
    lowered = part.lower()
    if not _COMPONENT.match(lowered):
        raise InvalidArgumentError(
            f"{what} {part!r} cannot be part of a registry path: use letters, digits and single '_', '.' or '-' "
            "between them (no spaces, no leading or trailing separators)."
        )
    return lowered


def repository_path(database: str, schema: str, name: str) -> str:
    """``db/schema/repo``: the registry path of a repository, in lower case."""
    return "/".join(
        (
            _path_component(database, "Database name"),
            _path_component(schema, "Schema name"),
            _path_component(name, "Image repository name"),
        )
    )


def repository_url(cp: ControlPlane, row: ImageRepositoryRow) -> str:
    schema = row.schema
    return f"{registry_host(cp)}/{repository_path(schema.database.name, schema.name, row.name)}"


def get_repository(session: Session, database: str, schema: str, name: str) -> ImageRepositoryRow:
    schema_row = resources.get_schema(session, database, schema)
    row = session.scalars(
        select(ImageRepositoryRow).where(
            ImageRepositoryRow.schema_id == schema_row.id, ImageRepositoryRow.name == name
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            f"Image repository {qualified(database, schema, name)} does not exist or not authorized."
        )
    return row


def get_visible_repository(
    session: Session, principal: Principal, database: str, schema: str, name: str
) -> ImageRepositoryRow:
    """The repository, if the caller holds any privilege on it (as if it did not exist otherwise)."""
    row = get_repository(session, database, schema, name)
    if not principal.is_admin and not privileges.held_privileges(session, principal, row):
        raise NotFoundError(
            f"Image repository {qualified(database, schema, name)} does not exist or not authorized."
        )
    return row


def list_repositories(
    session: Session, principal: Principal, database: str | None, schema: str | None
) -> list[ImageRepositoryRow]:
    """The repositories the caller holds any privilege on (every one for ACCOUNTADMIN), as Snowflake's
    SHOW lists only what the current roles can see."""
    query = select(ImageRepositoryRow).join(ImageRepositoryRow.schema).join(SchemaRow.database)
    if database is not None:
        query = query.where(DatabaseRow.name == database)
        if schema is not None:
            query = query.where(SchemaRow.name == schema)
    if not principal.is_admin:
        held = (
            select(GrantRow.image_repository_id)
            .join(RoleRow, RoleRow.id == GrantRow.role_id)
            .where(GrantRow.image_repository_id.is_not(None), RoleRow.name.in_(sorted(principal.roles)))
        )
        query = query.where(ImageRepositoryRow.id.in_(held))
    return list(session.scalars(query.order_by(DatabaseRow.name, SchemaRow.name, ImageRepositoryRow.name)))


def owner_role(session: Session, row: ImageRepositoryRow) -> str:
    """The role the repository's OWNERSHIP grant names: GRANT OWNERSHIP moves that grant, not ``row.owner``
    (the creator's role, kept as recorded)."""
    found = session.scalars(
        select(RoleRow.name)
        .join(GrantRow, GrantRow.role_id == RoleRow.id)
        .where(GrantRow.image_repository_id == row.id, GrantRow.privilege == "OWNERSHIP")
    ).first()
    return found if found is not None else row.owner


def _purge(cp: ControlPlane, database: str, schema: str, name: str) -> None:
    """Delete what the registry holds on the repository's path (server/image_registry/client.py)."""
    delete_images(
        cp.settings.home,
        registry=registry_host(cp),
        service=cp.settings.registry_service,
        repository=repository_path(database, schema, name),
    )


def create_repository(
    session: Session,
    cp: ControlPlane,
    principal: Principal,
    *,
    database: str,
    schema: str,
    name: str,
    or_replace: bool = False,
    if_not_exists: bool = False,
    comment: str | None = None,
) -> tuple[ImageRepositoryRow, bool]:
    """The repository and whether it was created (False: IF NOT EXISTS found it)."""
    if or_replace and if_not_exists:
        raise InvalidArgumentError("OR REPLACE and IF NOT EXISTS cannot be combined; use one of them.")
    registry_host(cp)
    repository_path(database, schema, name)  # refuse a name the registry cannot hold before recording it
    schema_row = resources.get_schema(session, database, schema)
    existing = session.scalars(
        select(ImageRepositoryRow).where(
            ImageRepositoryRow.schema_id == schema_row.id, ImageRepositoryRow.name == name
        )
    ).one_or_none()
    if existing is not None:
        if if_not_exists:
            return existing, False
        if not or_replace:
            raise AlreadyExistsError(
                f"Image repository {qualified(database, schema, name)} already exists. Use CREATE OR REPLACE, IF "
                "NOT EXISTS, or another name."
            )
        _require_owner(session, principal, existing, "replace")
        session.delete(existing)
        session.flush()
    # Names that differ only in case (of the database, schema or repository) would share one registry path.
    path = repository_path(database, schema, name)
    clash = _rows_for_path(session, path)
    if clash:
        other = clash[0].schema
        raise AlreadyExistsError(
            f"Image repository {qualified(other.database.name, other.name, clash[0].name)} already uses the "
            f"registry path {path} of {qualified(database, schema, name)} (paths are lower case). Choose another "
            "name."
        )
    # What is left on the path (of a repository dropped with its schema or database, or a DROP whose
    # registry call failed half way) must not reach the new owner.
    _purge(cp, database, schema, name)
    row = ImageRepositoryRow(schema_id=schema_row.id, name=name, owner=principal.owner_role, comment=comment)
    session.add(row)
    session.flush()
    grants.on_created(session, principal, row)  # the OWNERSHIP grant: SHOW GRANTS lists it, GRANT checks it
    return row, True


# The privileges that allow each registry action: deleting images (and ``*``, which includes it) is the
# owner's, as dropping the repository is.
_ALLOWED_BY = {
    "pull": frozenset({"READ", "WRITE", "OWNERSHIP"}),
    "push": frozenset({"WRITE", "OWNERSHIP"}),
    "delete": frozenset({"OWNERSHIP"}),
    "*": frozenset({"OWNERSHIP"}),
}


def may(session: Session, principal: Principal, row: ImageRepositoryRow, action: str) -> bool:
    """Whether the caller may ``pull``, ``push``, ``delete`` or ``*`` in the repository (nothing else)."""
    allowed = _ALLOWED_BY.get(action)
    if allowed is None:
        return False
    return principal.is_admin or bool(privileges.held_privileges(session, principal, row) & allowed)


def _require_owner(session: Session, principal: Principal, row: ImageRepositoryRow, action: str) -> None:
    if not may(session, principal, row, "*"):
        schema = row.schema
        raise PermissionDeniedError(
            f"Insufficient privileges to {action} image repository "
            f"{qualified(schema.database.name, schema.name, row.name)}: it needs its owner role "
            f"{owner_role(session, row)} or ACCOUNTADMIN, which {principal.name} does not hold."
        )


def require_pull(session: Session, principal: Principal, row: ImageRepositoryRow) -> None:
    if not may(session, principal, row, "pull"):
        schema = row.schema
        raise PermissionDeniedError(
            f"Insufficient privileges to pull images of image repository "
            f"{qualified(schema.database.name, schema.name, row.name)}: it needs READ (or WRITE, OWNERSHIP), which no "
            f"role of {principal.name} holds. Its owner or ACCOUNTADMIN can grant it: GRANT READ ON IMAGE REPOSITORY "
            f"{qualified(schema.database.name, schema.name, row.name)} TO ROLE <role>."
        )


def drop_repository(
    session: Session,
    cp: ControlPlane,
    principal: Principal,
    database: str,
    schema: str,
    name: str,
    *,
    if_exists: bool = False,
) -> bool:
    """DROP IMAGE REPOSITORY, and its images in the registry (their tags, manifests and blob links; the
    bytes stay until the registry's garbage collection). If the registry cannot delete them, the
    repository is not dropped."""
    try:
        row = get_repository(session, database, schema, name)
    except NotFoundError:
        if if_exists:
            return False
        raise
    _require_owner(session, principal, row, "drop")
    _purge(cp, database, schema, name)
    session.delete(row)
    session.flush()
    return True


def _rows_for_path(session: Session, path: str) -> list[ImageRepositoryRow]:
    """The repositories whose registry path is ``path`` (``db/schema/repo``, lower case)."""
    db, schema, repo = path.split("/")
    return list(
        session.scalars(
            select(ImageRepositoryRow)
            .join(ImageRepositoryRow.schema)
            .join(SchemaRow.database)
            .where(
                func.lower(DatabaseRow.name) == db,
                func.lower(SchemaRow.name) == schema,
                func.lower(ImageRepositoryRow.name) == repo,
            )
        )
    )


def _repository_for_path(session: Session, path: str) -> ImageRepositoryRow | None:
    """The repository an image path (``db/schema/repo/image...``) lies in, matched in lower case; None
    when none does, or (created before the clash check covered the whole path) more than one."""
    parts = path.split("/")
    if len(parts) < 4:
        return None  # a repository itself, or less, holds no images
    rows = _rows_for_path(session, "/".join(parts[:3]))
    return rows[0] if len(rows) == 1 else None


def granted_actions(session: Session, principal: Principal, scope: Scope) -> tuple[str, ...]:
    """What of ``scope`` the caller gets: nothing outside an existing repository, nothing it may not do."""
    if scope.type == "registry":
        # The catalog lists every repository: ACCOUNTADMIN only.
        return (
            tuple(a for a in scope.actions if a == "*")
            if principal.is_admin and scope.name == "catalog"
            else ()
        )
    if scope.type != "repository":
        return ()
    row = _repository_for_path(session, scope.name)
    if row is None:
        return ()
    return tuple(a for a in scope.actions if a in KNOWN_ACTIONS and may(session, principal, row, a))


@dataclass(frozen=True)
class RegistryImage:
    """An image of a repository: the reference a Docker engine pulls, and its path in the registry."""

    reference: str  # host:port/db/schema/repo/image:tag
    path: str  # db/schema/repo/image


def resolve_image(
    session: Session, cp: ControlPlane, principal: Principal | None, image: str, *, where: str
) -> RegistryImage | None:
    """An image repository path of a specification (``/db/schema/repo/image:tag``) as the registry
    reference, if ``principal`` may pull it (None: checked already, when the service was created);
    None for an image named as Docker does (``my-image:1.0``)."""
    if not image.startswith("/"):
        return None
    match = _IMAGE_PATH.match(image)
    parts = match.group("path").split("/") if match else []
    if match is None or len(parts) < 4 or not all(parts):
        raise InvalidArgumentError(
            f"{where} {image!r} is not an image repository path: name it /<database>/<schema>/<repository>/"
            "<image>:<tag>, as SHOW IMAGE REPOSITORIES' repository_url shows it without the host."
        )
    host = registry_host(cp)
    path = "/".join(p.lower() for p in parts)
    rows = _rows_for_path(session, "/".join(path.split("/")[:3]))
    if len(rows) > 1:
        names = " and ".join(qualified(r.schema.database.name, r.schema.name, r.name) for r in rows)
        raise InvalidArgumentError(
            f"{where} {image!r}: image repositories {names} share one registry path, so neither may be pulled "
            "from. Their owners or ACCOUNTADMIN should drop one of them."
        )
    row = rows[0] if rows else None
    if row is None:
        raise NotFoundError(
            f"{where} {image!r}: image repository {'.'.join(parts[:3]).upper()} does not exist. Create it with "
            "CREATE IMAGE REPOSITORY and push the image there first."
        )
    if principal is not None:
        require_pull(session, principal, row)
    return RegistryImage(reference=f"{host}/{path}{match.group('ref') or ':latest'}", path=path)


def pull_token(cp: ControlPlane, image: RegistryImage, subject: str) -> str:
    """A registry token that pulls ``image`` and nothing else, for the worker that runs it."""
    return sign_token(
        load_signing_key(cp.settings.home),
        subject=subject,
        audience=cp.settings.registry_service,
        access=[Scope("repository", image.path).claim(("pull",))],
        ttl_s=PULL_TOKEN_TTL_S,
    )
