"""The executor protocol: launch a runtime, read its output lines, wait, kill."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Executor", "LaunchSpec", "RuntimeHandle"]


@dataclass(frozen=True)
class LaunchSpec:
    job_name: str
    shard_index: int
    attempt: int
    env: dict[str, str] = field(repr=False)  # holds the shard token: never log it
    cpu_requests: str | None = None
    memory_requests: str | None = None
    threads: int | None = None


class RuntimeHandle(Protocol):
    def lines(self) -> Iterator[str]:
        """Output lines (stdout and stderr merged) until the runtime exits."""
        ...

    def wait(self) -> int:
        """The exit code; negative for a signal, as subprocess reports it."""
        ...

    def kill(self) -> None: ...


class Executor(Protocol):
    def launch(self, spec: LaunchSpec) -> RuntimeHandle: ...

    def close(self) -> None:
        """Release what the executor keeps between launches (idle runtimes)."""
        ...
