"""The functions of a model version, with their signatures (what SHOW FUNCTIONS IN MODEL lists)."""

from __future__ import annotations

from fastapi import APIRouter

from runbatch.wire.registry import FunctionPublic
from server.auth import privileges
from server.deps import SessionDep, UserDep
from server.errors import ERROR_RESPONSES
from server.registry import service as registry

__all__ = ["router"]

router = APIRouter(tags=["models"], responses=ERROR_RESPONSES)

_VERSION = "/databases/{database}/schemas/{schema}/models/{model}/versions/{version}"


@router.get(_VERSION + "/functions", summary="List a model version's functions with their signatures")
def list_functions(
    database: str, schema: str, model: str, version: str, session: SessionDep, user: UserDep
) -> list[FunctionPublic]:
    """One entry per target method, named as SQL calls it; ``version`` may be an alias (DEFAULT, LAST...)."""
    row = privileges.version_for(session, user, "USAGE", database, schema, model, version)
    return registry.functions_of(row.spec)
