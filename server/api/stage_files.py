"""Files on a stage: list, upload (streamed), download (streamed), delete."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from runbatch.errors import NotFoundError, StagePathError, UnsupportedError
from runbatch.stage.paths import StagePath, normalize_key
from runbatch.wire.resources import StageFilePublic
from server.api.uploads import receive_upload
from server.auth import privileges
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.stages import service as stages
from server.stages.service import ResolvedStage

router = APIRouter(tags=["stages"])

_PREFIX = "/databases/{database}/schemas/{schema}/stages/{stage}/files"
_CHUNK = 1 << 20


def _resolve(
    cp: ControlPlane, user: Principal, privilege: str, database: str, schema: str, stage: str, path: str
) -> ResolvedStage:
    with cp.read_sessionmaker() as session:
        where = StagePath(database, schema, stage, normalize_key(path))
        privileges.require_stage(session, user, privilege, where)
        return stages.resolve_stage_path(session, cp.storage, where, cp.secrets)


@router.get(_PREFIX)
def list_stage_files(
    database: str,
    schema: str,
    stage: str,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
    path: str = "",
    pattern: str | None = None,
) -> list[StageFilePublic]:
    """LIST: files whose path starts with ``path`` (a folder when it ends with '/'), optionally matching a regex."""
    privileges.require_stage(session, user, "READ", StagePath(database, schema, stage))
    resolved = stages.resolve_stage_path(
        session, cp.storage, StagePath(database, schema, stage, normalize_key(path)), cp.secrets
    )
    return stages.list_files(resolved, prefix_is_dir=path.endswith("/") or not path, pattern=pattern)


@router.put(_PREFIX + "/{path:path}", status_code=status.HTTP_201_CREATED)
async def upload_stage_file(
    database: str, schema: str, stage: str, path: str, request: Request, cp: ControlPlaneDep, user: UserDep
) -> StageFilePublic:
    """Store the request body as one file; it appears only once fully written."""
    resolved = await run_in_threadpool(_resolve, cp, user, "WRITE", database, schema, stage, path)
    if not resolved.path.path:
        raise StagePathError("A file name is required to upload to a stage.")
    if resolved.external_url:
        raise UnsupportedError(
            f"PUT does not upload to external stages ({resolved.external_url}); copy files into the bucket with your "
            "S3 tools, or upload to an internal stage."
        )
    await receive_upload(request, resolved.storage, resolved.key, path)
    entry = next(e for e in resolved.storage.list(resolved.key) if e.key == resolved.key)
    return StageFilePublic(
        name=resolved.list_name(resolved.path.path),
        path=resolved.path.path,
        size=entry.size,
        md5=resolved.storage.md5(entry),
        last_modified=entry.last_modified.strftime("%a, %d %b %Y %H:%M:%S GMT"),
    )


@router.get(_PREFIX + "/{path:path}")
def download_stage_file(
    database: str, schema: str, stage: str, path: str, cp: ControlPlaneDep, user: UserDep
) -> StreamingResponse:
    resolved = _resolve(cp, user, "READ", database, schema, stage, path)
    if not resolved.storage.exists(resolved.key):
        raise NotFoundError(f"File {path!r} does not exist on stage {stage}.")

    def _chunks() -> Iterator[bytes]:
        # Opened here, so a client that leaves before the first chunk leaks no handle.
        with resolved.storage.open_input_file(resolved.key) as handle:
            while data := handle.read(_CHUNK):
                yield bytes(data)

    return StreamingResponse(_chunks(), media_type="application/octet-stream")


@router.delete(_PREFIX + "/{path:path}", status_code=status.HTTP_204_NO_CONTENT)
def delete_stage_file(
    database: str, schema: str, stage: str, path: str, cp: ControlPlaneDep, user: UserDep
) -> None:
    """Delete one file, or every file under a folder when the path ends with '/'."""
    resolved = _resolve(cp, user, "WRITE", database, schema, stage, path)
    if path.endswith("/"):
        resolved.storage.delete_prefix(resolved.key + "/")
    else:
        resolved.storage.delete_file(resolved.key)
