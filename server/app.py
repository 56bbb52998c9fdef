"""create_app(): the FastAPI application of one control plane. No import-time globals."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from runbatch import __version__
from runbatch.stage.storage import open_storage
from server.api import api_router
from server.api import dags as dags_api
from server.api import dashboard as dashboard_api
from server.api import metrics as metrics_api
from server.api_docs import install_api_docs
from server.control_plane import ControlPlane, Dispatcher, NullDispatcher
from server.dags.scheduler import Scheduler
from server.dashboard import install_dashboard
from server.db.engine import make_engine, make_sessionmaker
from server.deps import UserDep
from server.errors import ERROR_RESPONSES, install_error_handlers
from server.image_registry.keys import load_signing_key
from server.maintenance import Maintenance
from server.secrets import SecretBox
from server.settings import ServerSettings

__all__ = ["build_control_plane", "create_app"]

log = logging.getLogger("runbatch.server")


def build_control_plane(settings: ServerSettings, dispatcher: Dispatcher | None = None) -> ControlPlane:
    engine = make_engine(settings.resolved_database_url())
    return ControlPlane(
        settings=settings,
        engine=engine,
        sessionmaker=make_sessionmaker(engine),
        read_sessionmaker=make_sessionmaker(engine, read_only=True),
        storage=open_storage(settings.storage_config()),
        secrets=SecretBox.for_settings(settings),
        dispatcher=dispatcher or NullDispatcher(),
    )


def create_app(control_plane: ControlPlane) -> FastAPI:
    maintenance = Maintenance(control_plane)
    scheduler = Scheduler(control_plane)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if control_plane.settings.registry_host:
            # The registry reads the certificate when it starts, possibly before any token is asked for.
            load_signing_key(control_plane.settings.home)
        maintenance.start()
        scheduler.start()
        try:
            yield
        finally:
            scheduler.stop()
            maintenance.stop()
            control_plane.background.shutdown(wait=True, cancel_futures=False)

    app = FastAPI(
        title="runbatch",
        version=__version__,
        description="Self-hosted batch inference with Snowflake's Model Registry and run_batch API.",
        lifespan=lifespan,
        # The API's description is served to authenticated callers only (below), like every route.
        openapi_url=None,
        docs_url=None,
        redoc_url=None,
    )
    app.state.control_plane = control_plane
    install_error_handlers(app)
    app.include_router(api_router)
    app.include_router(dags_api.router, prefix="/api/v1", responses=ERROR_RESPONSES)
    app.include_router(metrics_api.router)
    app.include_router(dashboard_api.router, prefix="/api/v1")
    install_dashboard(app)
    control_plane.metrics.watch(control_plane)
    app.state.dag_scheduler = scheduler

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    def openapi(_: UserDep) -> dict[str, Any]:
        return app.openapi()

    install_api_docs(app)

    return app
