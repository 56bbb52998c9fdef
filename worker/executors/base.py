"""The executor protocol: launch a runtime, read its output lines, wait, kill."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Executor", "LaunchRefused", "LaunchSpec", "RuntimeHandle"]


class LaunchRefused(Exception):
    """This shard's runtime can never start here (a retry would fail the same way)."""


@dataclass(frozen=True)
class LaunchSpec:
    job_name: str
    shard_index: int
    attempt: int
    env: dict[str, str] = field(repr=False)  # holds the shard token: never log it
    job_id: str = ""
    cpu_requests: str | None = None
    memory_requests: str | None = None
    gpu_requests: str | None = None
    threads: int | None = None
    # The model's environment, for executors that build an image per environment.
    pip_requirements: tuple[str, ...] = ()
    conda_dependencies: tuple[str, ...] = ()
    python_version: str | None = None
    force_rebuild: bool = False
    image_repo: str | None = None


class RuntimeHandle(Protocol):
    def lines(self) -> Iterator[str]:
        """Output lines (stdout and stderr merged) until the runtime exits."""
        ...

    def wait(self) -> int:
        """The exit code; negative for a signal, as subprocess reports it."""
        ...

    def kill(self) -> None: ...

    def exit_message(self, code: int) -> tuple[str, bool] | None:
        """Why the runtime ended and whether to retry, where the executor knows more than the code."""
        ...


class Executor(Protocol):
    def launch(self, spec: LaunchSpec) -> RuntimeHandle: ...

    def close(self) -> None:
        """Release what the executor keeps between launches (idle runtimes)."""
        ...
