"""Maps every failure to the one error body ``{"error": {"code", "message"}}``.

Domain code raises the classes of ``runbatch.errors``; nothing else builds error responses.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from runbatch.errors import RunbatchError
from runbatch.wire.errors import ErrorBody

__all__ = ["ERROR_RESPONSES", "error_response", "install_error_handlers"]

log = logging.getLogger("runbatch.server")

_HTTP_CODES = {
    400: "invalid_argument",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_argument",
}


# Documented on every /api/v1 route: each error answers the one body (schemathesis checks it).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "Invalid request; the message names the problem and the fix"},
    401: {"model": ErrorBody, "description": "Missing, unknown, revoked or expired bearer token"},
    403: {"model": ErrorBody, "description": "The token's role may not do this"},
    404: {"model": ErrorBody, "description": "No such resource (or not authorized to see it)"},
    409: {"model": ErrorBody, "description": "Conflicts with the current state (exists, not empty, in use)"},
    422: {"model": ErrorBody, "description": "Parameters or body fail validation"},
    500: {"model": ErrorBody, "description": "Unexpected server error; the message names an incident id"},
    503: {"model": ErrorBody, "description": "The metadata database is unavailable; retry shortly"},
}


_UNSTORABLE = (
    "A value in the request cannot be stored: a number is out of range (integers are 64-bit) or text holds "
    "invalid Unicode (a lone surrogate such as \\ud800). Send values in range and UTF-8 text."
)


def _raised_binding_a_value(exc: BaseException) -> bool:
    """True when the database driver failed on a value (it passed through SQLAlchemy's execute), not
    when our own code overflowed: only the former is the request's fault."""
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("sqlalchemy."):
            return True
        tb = tb.tb_next
    return False


def error_response(status: int, code: str, message: str) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RunbatchError)
    async def _domain(_: Request, exc: RunbatchError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body') or 'body'}: {err.get('msg')}"
            for err in exc.errors()
        )
        return error_response(422, "invalid_argument", f"Invalid request: {problems}")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _HTTP_CODES.get(exc.status_code, "error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(OperationalError)
    async def _db_down(_: Request, exc: OperationalError) -> JSONResponse:
        log.warning("metadata database unavailable: %s", exc.__class__.__name__)
        return error_response(503, "unavailable", "The metadata database is unavailable; retry shortly.")

    @app.exception_handler(DataError)
    async def _bad_value(_: Request, exc: DataError) -> JSONResponse:
        # The database refused a value of the request (out of range, too long): the caller's to fix.
        log.info("metadata database refused a value: %s", exc.orig.__class__.__name__)
        return error_response(400, "invalid_argument", _UNSTORABLE)

    @app.exception_handler(Exception)
    async def _internal(_: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return error_response(503, "unavailable", "The metadata database is unavailable; retry shortly.")
        if isinstance(exc, OverflowError | UnicodeEncodeError) and _raised_binding_a_value(exc):
            return error_response(400, "invalid_argument", _UNSTORABLE)
        incident = uuid.uuid4().hex[:12]
        log.exception("internal error (incident %s)", incident)
        return error_response(
            500, "internal", f"Internal server error (incident {incident}); see the server log."
        )
