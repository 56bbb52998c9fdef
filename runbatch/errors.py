"""The one exception tree of runbatch, shared by the SDK, the server and the runtime.

Every error the server returns has the body ``{"error": {"code": "...", "message": "..."}}``;
the SDK turns it back into the class registered for that code. Classes also derive from
the builtin type Snowflake raises for the same condition, so code written for
``snowflake.ml`` that catches ``ValueError`` or ``FileExistsError`` keeps working::

    RunbatchError
     ├── InvalidArgumentError (ValueError)            400 invalid_argument
     │    ├── NotFoundError                           404 not_found
     │    ├── AlreadyExistsError                      409 already_exists
     │    ├── StagePathError                          400 invalid_stage_path
     │    └── InputRowError                           -   one input row a model cannot process
     ├── OutputExistsError (FileExistsError)          409 output_not_empty
     ├── ConflictError                                409 conflict
     ├── AuthenticationError (PermissionError)        401 unauthenticated
     ├── PermissionDeniedError (PermissionError)      403 permission_denied
     ├── UnsupportedError (NotImplementedError)       400 unsupported
     ├── ServiceUnavailableError (RuntimeError)       503 unavailable
     ├── InternalError (RuntimeError)                 500 internal
     ├── TransportError (ConnectionError)             -   the control plane could not be reached
     └── JobTimeoutError (TimeoutError)               -   wait() ran out of time
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "AlreadyExistsError",
    "AuthenticationError",
    "ConflictError",
    "InputRowError",
    "InternalError",
    "InvalidArgumentError",
    "JobTimeoutError",
    "NotFoundError",
    "OutputExistsError",
    "PermissionDeniedError",
    "RunbatchError",
    "ServiceUnavailableError",
    "StagePathError",
    "TransportError",
    "UnsupportedError",
    "error_for_code",
]


class RunbatchError(Exception):
    """Base of every runbatch error. ``code`` and ``status`` match the REST error body."""

    code: ClassVar[str] = "internal"
    status: ClassVar[int] = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgumentError(RunbatchError, ValueError):
    code = "invalid_argument"
    status = 400


class NotFoundError(InvalidArgumentError):
    code = "not_found"
    status = 404


class AlreadyExistsError(InvalidArgumentError):
    code = "already_exists"
    status = 409


class StagePathError(InvalidArgumentError):
    code = "invalid_stage_path"
    status = 400


class InputRowError(InvalidArgumentError):
    """One input row a model cannot process (a prompt longer than its context, an unreadable image).

    Raised by model handlers and engines; the runtime writes that row to the job's error rows
    with ``row_code`` as its ERROR_CODE instead of failing the shard.
    """

    code = "invalid_row"

    def __init__(self, row_code: str, message: str) -> None:
        super().__init__(message)
        self.row_code = row_code


class OutputExistsError(RunbatchError, FileExistsError):
    code = "output_not_empty"
    status = 409


class ConflictError(RunbatchError):
    code = "conflict"
    status = 409


class AuthenticationError(RunbatchError, PermissionError):
    code = "unauthenticated"
    status = 401


class PermissionDeniedError(RunbatchError, PermissionError):
    code = "permission_denied"
    status = 403


class UnsupportedError(RunbatchError, NotImplementedError):
    code = "unsupported"
    status = 400


class ServiceUnavailableError(RunbatchError, RuntimeError):
    code = "unavailable"
    status = 503


class InternalError(RunbatchError, RuntimeError):
    code = "internal"
    status = 500


class TransportError(RunbatchError, ConnectionError):
    code = "transport"
    status = 0


class JobTimeoutError(RunbatchError, TimeoutError):
    code = "timeout"
    status = 0


_BY_CODE: dict[str, type[RunbatchError]] = {
    cls.code: cls
    for cls in (
        InvalidArgumentError,
        NotFoundError,
        AlreadyExistsError,
        StagePathError,
        OutputExistsError,
        ConflictError,
        AuthenticationError,
        PermissionDeniedError,
        UnsupportedError,
        ServiceUnavailableError,
        InternalError,
    )
}


def error_for_code(code: str, message: str) -> RunbatchError:
    """The exception the SDK raises for an error body with this code."""
    return _BY_CODE.get(code, InternalError)(message)
