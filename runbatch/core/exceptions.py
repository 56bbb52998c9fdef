"""``snowflake.core.exceptions`` names, on runbatch's one exception tree (``runbatch.errors``)."""

from __future__ import annotations

from runbatch.errors import ConflictError, NotFoundError, RunbatchError

__all__ = ["ConflictError", "InvalidOperationError", "NotFoundError"]


class InvalidOperationError(RunbatchError):
    """An operation the object's state does not allow, e.g. a second finalizer task in one DAG."""

    code = "invalid_operation"
    status = 400
