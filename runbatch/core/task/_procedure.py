"""``StoredProcedureCall``: a Python task definition, as ``snowflake.core.task.StoredProcedureCall``."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

__all__ = ["StoredProcedureCall"]


class StoredProcedureCall:
    """A Python callable taking a ``Session``, run as a task.

    Snowflake uploads it to ``stage_location`` and installs ``packages`` and ``imports`` for it;
    runbatch runs it in a subprocess of the control plane with the control plane's packages, so
    those options are accepted and not used.
    """

    def __init__(
        self,
        func: Callable[..., Any],
        *,
        args: list[Any] | None = None,
        return_type: Any = None,
        input_types: list[Any] | None = None,
        stage_location: str | None = None,
        imports: list[str | tuple[str, str]] | None = None,
        packages: list[str | ModuleType] | None = None,
    ) -> None:
        if not callable(func):
            raise TypeError(f"StoredProcedureCall needs a callable, not {type(func).__name__}.")
        if args:
            raise TypeError(
                "StoredProcedureCall(args=...) is not supported: the callable gets the Session only."
            )
        self.func = func
        self._args = args
        self._return_type = return_type
        self._input_types = input_types
        self._stage_location = stage_location
        self._imports = imports
        self._packages = packages
