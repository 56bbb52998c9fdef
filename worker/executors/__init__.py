"""Executors start one runtime per shard attempt. They share the ``Executor`` protocol."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from worker.executors.base import Executor, LaunchSpec, RuntimeHandle
from worker.executors.process import ProcessExecutor
from worker.settings import WorkerSettings

if TYPE_CHECKING:
    from worker.images import RegistryRepository

__all__ = ["Executor", "LaunchSpec", "ProcessExecutor", "RuntimeHandle", "create_executor"]

log = logging.getLogger("runbatch.worker")


def create_executor(settings: WorkerSettings, *, worker_name: str, cache_dir: Path, gpus: int) -> Executor:
    """The executor ``settings.executor`` names; a docker executor first removes its host's orphans."""
    if settings.executor == "process":
        return ProcessExecutor(settings.python, fork=settings.fork_runtimes, preload=settings.preload)
    if settings.executor != "docker":
        raise ValueError(
            f"Unknown executor {settings.executor!r}: set RUNBATCH_EXECUTOR to 'process' or 'docker'."
        )
    import docker

    from worker.executors.docker import DockerExecutor
    from worker.images import ImageBuilder

    repository, tokens = _runtime_repository(settings)
    images = ImageBuilder(
        docker.from_env(timeout=600),
        source=settings.docker_source,
        base_image=settings.docker_base_image,
        lock_dir=cache_dir / "image-locks",
    )
    executor = DockerExecutor(
        images,
        worker_name=worker_name,
        host=socket.gethostname(),
        cache_dir=cache_dir / "containers",
        cpu_image=settings.docker_cpu_image,
        gpu_image=settings.docker_gpu_image,
        gpus=[str(i) for i in range(gpus)],
        mounts=[m.strip() for m in settings.docker_mounts.split(",") if m.strip()],
        runtime_repository=repository,
        registry_tokens=tokens,
    )
    removed = executor.remove_orphans()
    if removed:
        log.info(
            "removed %d runtime container(s) of workers that are gone: %s", len(removed), ", ".join(removed)
        )
    return executor


def _runtime_repository(
    settings: WorkerSettings,
) -> tuple[RegistryRepository | None, Callable[[list[str]], str] | None]:
    """Where runtime images are pulled from (RUNBATCH_RUNTIME_REPOSITORY), and how pull tokens are got:
    from the control plane, with the worker's own token."""
    if not settings.runtime_repository:
        return None, None
    from worker.images import RegistryRepository

    repository = RegistryRepository(settings.runtime_repository)
    if settings.api_url is None or settings.token is None:
        raise ValueError(
            "RUNBATCH_RUNTIME_REPOSITORY needs RUNBATCH_API_URL and RUNBATCH_TOKEN: the worker asks the control "
            "plane for registry tokens with them."
        )
    api_url, token = settings.api_url, settings.token.get_secret_value()

    def tokens(scopes: list[str]) -> str:
        from runbatch.client import ControlPlaneClient

        client = ControlPlaneClient(api_url, token)
        try:
            return client.registry_token(scopes)
        finally:
            client.close()

    return repository, tokens
