"""The web dashboard: a page shell and static assets served at ``/``, shipped inside the package.

The shell holds no data: every number on its pages comes from the authenticated REST API, called
by the browser with the bearer token the sign-in page keeps in ``sessionStorage``. So the shell
needs no authentication, and without cookies there is nothing to forge across sites.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["PAGE_HEADERS", "STATIC_DIR", "install_dashboard"]

STATIC_DIR = Path(__file__).parent / "static"

# Scripts and styles only from this server: the page never loads anything from a CDN, and an
# injected <script> cannot run. Styles allow inline ones, which uPlot (and Swagger UI at /docs) set.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def install_dashboard(app: FastAPI) -> None:
    """Serve the dashboard at ``/`` and its assets under ``/dashboard/``."""
    app.mount("/dashboard", StaticFiles(directory=STATIC_DIR), name="dashboard")

    @app.get("/", include_in_schema=False)
    def dashboard() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)
