"""One runtime container per shard attempt (``RUNBATCH_EXECUTOR=docker``).

Containers are named ``runbatch-<job>-<shard>-<attempt>`` and labelled with job, shard,
attempt, host and worker, so a redelivered launch finds its container instead of starting a
second, and a worker that starts after a crash removes what its dead predecessors left.
``cpu_requests`` / ``memory_requests`` become the container's CPU and memory limits (no swap,
so an overrun is an out-of-memory kill, reported as such); ``gpu_requests`` takes that many
GPUs from the worker's inventory. Model versions are cached per host in a shared volume.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runbatch.compute import parse_cpu, parse_gpu, parse_memory
from worker.executors.base import LaunchSpec
from worker.executors.process import cpu_count_for
from worker.images import ImageBuilder

__all__ = [
    "CONTAINER_CACHE",
    "DockerExecutor",
    "DockerHandle",
    "GpuInventory",
    "container_name",
    "resource_limits",
]

log = logging.getLogger("runbatch.worker")

CONTAINER_CACHE = "/var/cache/runbatch"
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_LABEL = "org.runbatch"


def container_name(job_name: str, shard: int, attempt: int) -> str:
    """``runbatch-<job>-<shard>-<attempt>``, with characters Docker refuses in names replaced."""
    return "runbatch-" + re.sub(r"[^a-zA-Z0-9_.-]", "_", f"{job_name}-{shard}-{attempt}").lower()


def resource_limits(cpu_requests: str | None, memory_requests: str | None) -> dict[str, Any]:
    """Docker's create arguments for Snowflake's resource strings ("2", "500m", "8Gi")."""
    limits: dict[str, Any] = {}
    if cpu_requests:
        limits["nano_cpus"] = int(parse_cpu(cpu_requests) * 1_000_000_000)
    if memory_requests:
        memory = parse_memory(memory_requests)
        # Swap equal to the limit means none: going over is an out-of-memory kill, not a crawl.
        limits.update(mem_limit=memory, memswap_limit=memory)
    return limits


class GpuInventory:
    """The GPUs a worker offers, handed to shards whole and taken back when their container ends."""

    def __init__(self, device_ids: list[str]) -> None:
        self._free = list(device_ids)
        self._lock = threading.Lock()

    @property
    def free(self) -> list[str]:
        with self._lock:
            return list(self._free)

    def take(self, gpu_requests: str | None) -> list[str]:
        wanted = parse_gpu(gpu_requests) if gpu_requests else 0
        with self._lock:
            if wanted > len(self._free):
                raise RuntimeError(
                    f"gpu_requests={gpu_requests} but this worker has {len(self._free)} free GPU(s) "
                    f"({len(self._free)} of its inventory); the shard is retried on a worker with room."
                )
            taken, self._free = self._free[:wanted], self._free[wanted:]
        return taken

    def give_back(self, device_ids: list[str]) -> None:
        with self._lock:
            self._free.extend(d for d in device_ids if d not in self._free)

    @staticmethod
    def device_requests(device_ids: list[str]) -> list[Any]:
        if not device_ids:
            return []
        from docker.types import DeviceRequest

        return [DeviceRequest(device_ids=list(device_ids), capabilities=[["gpu"]])]


class DockerHandle:
    def __init__(self, container: Any, memory_requests: str | None, on_exit: Callable[[], None]) -> None:
        self.container = container
        self._memory_requests = memory_requests
        self._on_exit = on_exit
        self._oom = False
        self._exited = False

    def lines(self) -> Iterator[str]:
        pending = b""
        for chunk in self.container.logs(stream=True, follow=True, stdout=True, stderr=True):
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", errors="replace").rstrip("\r")
        if pending:
            yield pending.decode("utf-8", errors="replace")

    def wait(self) -> int:
        import docker.errors

        try:
            code = int(self.container.wait()["StatusCode"])
            self.container.reload()
            self._oom = bool(self.container.attrs["State"].get("OOMKilled"))
        finally:
            try:
                self.container.remove(force=True)
            except docker.errors.APIError:
                pass  # already gone (removed by cancel, or by an orphan sweep)
            if not self._exited:
                self._exited = True
                self._on_exit()
        return code

    def kill(self) -> None:
        import docker.errors

        try:
            self.container.kill()
        except docker.errors.APIError:
            pass  # not running any more

    def exit_message(self, code: int) -> tuple[str, bool] | None:
        """Why the container ended, where Docker knows better than the exit code (and whether to retry)."""
        if self._oom:
            limit = f" of {self._memory_requests}" if self._memory_requests else ""
            return (
                f"The runtime ran out of memory: Docker killed its container at the memory limit{limit} "
                f"(JobSpec.memory_requests), exit code {code}. Raise memory_requests or lower max_batch_rows.",
                False,
            )
        return None


class DockerExecutor:
    def __init__(
        self,
        images: ImageBuilder,
        *,
        worker_name: str,
        host: str,
        cache_dir: Path,
        cpu_image: str | None = None,
        gpu_image: str | None = None,
        gpus: list[str] | None = None,
        mounts: list[str] | None = None,
    ) -> None:
        self.images = images
        self.client = images.client
        self.worker_name = worker_name
        self.host = host
        self.cache_dir = cache_dir
        self._images = {"cpu": cpu_image, "gpu": gpu_image}
        self.gpus = GpuInventory(gpus or [])
        self.mounts = list(mounts or [])
        self._image_lock = threading.Lock()
        # Runtimes run as an unprivileged user; the shared model cache must be theirs to fill.
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.cache_dir, 0o1777)

    def runtime_image(self, kind: str) -> str:
        with self._image_lock:
            image = self._images.get(kind)
            if image is None:
                image = self.images.runtime_image(kind)
                self._images[kind] = image
            return image

    def _labels(self, spec: LaunchSpec) -> dict[str, str]:
        return {
            f"{_LABEL}.job": spec.job_name,
            f"{_LABEL}.shard": str(spec.shard_index),
            f"{_LABEL}.attempt": str(spec.attempt),
            f"{_LABEL}.host": self.host,
            f"{_LABEL}.worker": self.worker_name,
        }

    def _existing(self, spec: LaunchSpec) -> Any | None:
        """The container of this very attempt, when a redelivered launch finds one still running."""
        labels = self._labels(spec)
        filters = {
            "label": [f"{k}={labels[k]}" for k in (f"{_LABEL}.job", f"{_LABEL}.shard", f"{_LABEL}.attempt")]
        }
        for container in self.client.containers.list(all=True, filters=filters):
            if container.status == "running":
                return container
            container.remove(force=True)
        return None

    def image_for(self, spec: LaunchSpec) -> str:
        if spec.python_version and spec.python_version != "3.11":
            raise RuntimeError(
                f"The model was logged with python_version {spec.python_version}; runtime images run Python "
                "3.11. Log the model with python_version='3.11'."
            )
        runtime = self.runtime_image("gpu" if spec.gpu_requests else "cpu")
        return self.images.model_image(
            runtime,
            spec.pip_requirements,
            spec.conda_dependencies,
            force=spec.force_rebuild,
            repository=spec.image_repo,
        )

    def launch(self, spec: LaunchSpec) -> DockerHandle:
        existing = self._existing(spec)
        if existing is not None:
            log.info(
                "shard %d of %s: attaching to its running container %s",
                spec.shard_index,
                spec.job_name,
                existing.name,
            )
            return DockerHandle(existing, spec.memory_requests, lambda: None)
        image = self.image_for(spec)
        env = dict(spec.env, RUNBATCH_CACHE_DIR=CONTAINER_CACHE, PYTHONUNBUFFERED="1")
        threads = cpu_count_for(spec.cpu_requests) or spec.threads
        if threads:
            env.update({var: str(threads) for var in _THREAD_VARS})
            env["RUNBATCH_THREADS"] = str(threads)
        volumes = {str(self.cache_dir): {"bind": CONTAINER_CACHE, "mode": "rw"}}
        volumes.update({path: {"bind": path, "mode": "rw"} for path in self.mounts})
        gpus = self.gpus.take(spec.gpu_requests)
        try:
            container = self.client.containers.run(
                image,
                name=container_name(spec.job_name, spec.shard_index, spec.attempt),
                labels=self._labels(spec),
                environment=env,
                network_mode="host",
                volumes=volumes,
                device_requests=GpuInventory.device_requests(gpus),
                detach=True,
                **resource_limits(spec.cpu_requests, spec.memory_requests),
            )
        except Exception:
            self.gpus.give_back(gpus)
            raise
        return DockerHandle(container, spec.memory_requests, lambda: self.gpus.give_back(gpus))

    def remove_orphans(self) -> list[str]:
        """Remove this host's runbatch containers whose worker process is gone; their shards are retried
        by the control plane's reaper. Returns the names removed."""
        removed = []
        for container in self.client.containers.list(
            all=True, filters={"label": f"{_LABEL}.host={self.host}"}
        ):
            owner = container.labels.get(f"{_LABEL}.worker", "")
            if owner == self.worker_name or _worker_alive(owner, self.host):
                continue
            container.remove(force=True)
            removed.append(container.name)
        return removed

    def close(self) -> None:
        """Nothing idles between launches: containers end with their shards."""


def _worker_alive(name: str, host: str) -> bool:
    """Whether the worker named ``host:pid:hex`` is still a process of this host."""
    parts = name.split(":")
    if len(parts) != 3 or parts[0] != host or not parts[1].isdigit():
        return False
    if int(parts[1]) == os.getpid():
        return False  # our own pid under another name: a previous worker of this container
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
