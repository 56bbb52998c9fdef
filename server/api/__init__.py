"""REST routers under /api/v1. Routes own the transaction; services only flush."""

from fastapi import APIRouter

from server.api import health, jobs, models, resources, shards, sql, stage_files, tables, workers

__all__ = ["api_router"]

api_router = APIRouter(prefix="/api/v1")
api_router.include_router(health.router)
api_router.include_router(sql.router)
api_router.include_router(resources.router)
api_router.include_router(stage_files.router)
api_router.include_router(tables.router)
api_router.include_router(models.router)
api_router.include_router(jobs.router)
api_router.include_router(shards.router)
api_router.include_router(workers.router)
