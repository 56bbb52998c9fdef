"""The OpenAPI explorer at ``/docs``: Swagger UI served from the package, never from a CDN.

The page holds no data: it loads ``/api/v1/openapi.json`` (authenticated, like every route) with
the bearer token that the dashboard's sign-in keeps in ``sessionStorage['runbatch.token']``, or
with one the user pastes. So the page and its assets need no authentication.
"""

from __future__ import annotations

from pathlib import Path

import swagger_ui_bundle  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from server.dashboard import PAGE_HEADERS

__all__ = ["STATIC_DIR", "install_api_docs"]

STATIC_DIR = Path(__file__).parent / "static"


def install_api_docs(app: FastAPI) -> None:
    """Serve the page at ``/docs``, its script under ``/docs/static/`` and Swagger UI under ``/docs/swagger-ui/``."""
    app.mount("/docs/swagger-ui", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger-ui")
    app.mount("/docs/static", StaticFiles(directory=STATIC_DIR), name="api-docs")

    @app.get("/docs", include_in_schema=False)
    def api_docs() -> FileResponse:
        return FileResponse(STATIC_DIR / "docs.html", media_type="text/html", headers=PAGE_HEADERS)
