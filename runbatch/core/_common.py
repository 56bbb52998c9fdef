"""``CreateMode``, as ``snowflake.core._common.CreateMode`` (also exported as ``runbatch.core.CreateMode``)."""

from __future__ import annotations

from enum import Enum

from runbatch.errors import InvalidArgumentError

__all__ = ["CreateMode"]


class CreateMode(str, Enum):  # noqa: UP042 - Snowflake's enum is (str, Enum); StrEnum changes str()
    """What deploying an object does when one of that name exists."""

    error_if_exists = "errorIfExists"
    or_replace = "orReplace"
    if_not_exists = "ifNotExists"

    @classmethod
    def of(cls, mode: CreateMode | str) -> CreateMode:
        """A member from itself, its name (``"or_replace"``) or its value (``"orReplace"``)."""
        if isinstance(mode, CreateMode):
            return mode
        for member in cls:
            if mode in (member.name, member.value):
                return member
        raise InvalidArgumentError(
            f"Unknown create mode {mode!r}; use CreateMode.error_if_exists, CreateMode.or_replace or "
            "CreateMode.if_not_exists."
        )
