"""REST routers under /api/v1. Routes own the transaction; services only flush."""

from fastapi import APIRouter

from server.api import (
    auth,
    grants,
    health,
    image_repositories,
    job_results,
    jobs,
    model_functions,
    model_services,
    models,
    resources,
    shards,
    sql,
    stage_files,
    tables,
    users,
    workers,
)
from server.api import monitors as model_monitors
from server.api import services as spcs_services
from server.errors import ERROR_RESPONSES

__all__ = ["api_router"]

# Every route documents the one error body for its error statuses.
api_router = APIRouter(prefix="/api/v1", responses=ERROR_RESPONSES)
api_router.include_router(health.router)
api_router.include_router(sql.router)
api_router.include_router(resources.router)
api_router.include_router(stage_files.router)
api_router.include_router(tables.router)
api_router.include_router(models.router)
api_router.include_router(jobs.router)
api_router.include_router(job_results.router)
api_router.include_router(model_functions.router)
api_router.include_router(shards.router)
api_router.include_router(workers.router)
api_router.include_router(spcs_services.router)
api_router.include_router(model_services.router)
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(grants.router)
api_router.include_router(model_monitors.router)
api_router.include_router(image_repositories.router)
