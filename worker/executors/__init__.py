"""Executors start one runtime per shard attempt. They share the ``Executor`` protocol."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

from worker.executors.base import Executor, LaunchSpec, RuntimeHandle
from worker.executors.process import ProcessExecutor
from worker.settings import WorkerSettings

__all__ = ["Executor", "LaunchSpec", "ProcessExecutor", "RuntimeHandle", "create_executor"]

log = logging.getLogger("runbatch.worker")


def create_executor(settings: WorkerSettings, *, worker_name: str, cache_dir: Path, gpus: int) -> Executor:
    """The executor ``settings.executor`` names; a docker executor first removes its host's orphans."""
    if settings.executor == "process":
        warm = settings.slots if settings.warm_runtimes is None else settings.warm_runtimes
        return ProcessExecutor(settings.python, warm=warm, preload=settings.preload)
    if settings.executor != "docker":
        raise ValueError(
            f"Unknown executor {settings.executor!r}: set RUNBATCH_EXECUTOR to 'process' or 'docker'."
        )
    import docker

    from worker.executors.docker import DockerExecutor
    from worker.images import ImageBuilder

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
    )
    removed = executor.remove_orphans()
    if removed:
        log.info(
            "removed %d runtime container(s) of workers that are gone: %s", len(removed), ", ".join(removed)
        )
    return executor
