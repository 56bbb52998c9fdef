"""Liveness and readiness; the only routes that need no token."""

from fastapi import APIRouter
from sqlalchemy import text

from runbatch import __version__
from server.deps import ControlPlaneDep

router = APIRouter(tags=["health"])


@router.get("/health")
def health(cp: ControlPlaneDep) -> dict[str, str]:
    """200 when the process is up and the metadata database answers."""
    with cp.read_sessionmaker() as session:
        session.execute(text("SELECT 1"))
    return {"status": "ok", "version": __version__}
