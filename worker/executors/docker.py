"""One runtime container per shard attempt (``RUNBATCH_EXECUTOR=docker``).

Containers are named ``runbatch-<job>-<shard>-<attempt>`` and labelled with job (name and id),
shard, attempt, host and worker, so a second launch of one attempt finds its container instead of
starting another, and a worker that starts removes what dead workers of its host left.
``cpu_requests`` / ``memory_requests`` become the container's CPU and memory limits (no swap,
so an overrun is an out-of-memory kill, reported as such); ``gpu_requests`` takes that many
GPUs from the worker's inventory. Model versions are cached per host in a shared volume.
"""

from __future__ import annotations

import base64
import fcntl
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from runbatch.compute import parse_cpu, parse_gpu, parse_memory
from worker.executors.base import LaunchRefused, LaunchSpec
from worker.executors.process import cpu_count_for
from worker.images import ImageBuilder, RegistryRepository

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
_MAX_LINE = 64 << 10
_PULL_ATTEMPTS = 5


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
        self._all = list(device_ids)
        self._free = list(device_ids)
        self._lock = threading.Condition()

    @property
    def free(self) -> list[str]:
        with self._lock:
            return list(self._free)

    def take(self, gpu_requests: str | None, timeout: float | None = None) -> list[str]:
        """GPUs for one shard, waiting while other shards hold them (the shard heartbeats meanwhile)."""
        wanted = parse_gpu(gpu_requests) if gpu_requests else 0
        if wanted > len(self._all):
            raise LaunchRefused(
                f"gpu_requests={gpu_requests} but this worker has {len(self._all)} GPU(s) in all "
                "(RUNBATCH_GPUS); run GPU jobs on a pool whose workers have enough."
            )
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._free) >= wanted, timeout):
                raise RuntimeError(f"No {wanted} GPU(s) became free in {timeout}s.")
            taken, self._free = self._free[:wanted], self._free[wanted:]
        return taken

    def give_back(self, device_ids: list[str]) -> None:
        with self._lock:
            self._free.extend(d for d in device_ids if d not in self._free)
            self._lock.notify_all()

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
            # Progress bars redraw with carriage returns: those end lines too, as in text mode.
            pending += chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", errors="replace")
            while len(pending) > _MAX_LINE:
                yield pending[:_MAX_LINE].decode("utf-8", errors="replace")
                pending = pending[_MAX_LINE:]
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
        runtime_repository: RegistryRepository | None = None,
        registry_tokens: Callable[[list[str]], str] | None = None,
    ) -> None:
        """With ``runtime_repository``, runtime images missing here are pulled from it (with tokens from
        ``registry_tokens``: scopes -> a registry token of the control plane) rather than built."""
        self.images = images
        self.client = images.client
        self.worker_name = worker_name
        self.host = host
        self.cache_dir = cache_dir
        self._images: dict[str, str | None] = {"cpu": cpu_image, "gpu": gpu_image}
        self._configured = dict(self._images)
        if runtime_repository is not None and registry_tokens is None:
            raise ValueError("A runtime repository needs registry_tokens to pull from it.")
        self.runtime_repository = runtime_repository
        self._registry_tokens = registry_tokens
        self.gpus = GpuInventory(gpus or [])
        self.mounts = list(mounts or [])
        self._image_lock = threading.Lock()
        self._forced: set[tuple[str, str]] = set()
        # Runtimes run as an unprivileged user; the shared model cache must be theirs to fill.
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.cache_dir, 0o1777)
        # Held for the worker's lifetime: another worker's orphan sweep on this host tests it.
        self._workers_dir = self.cache_dir.parent / "workers"
        self._workers_dir.mkdir(parents=True, exist_ok=True)
        self._liveness: Any = open(self._workers_dir / f"{_safe(worker_name)}.lock", "w")  # noqa: SIM115
        fcntl.flock(self._liveness, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def runtime_image(self, kind: str) -> str:
        with self._image_lock:
            image = self._images.get(kind)
            if image is None or not self.images.exists(image):  # not built yet, or pruned by a newer build
                if self.runtime_repository is not None and self._configured.get(kind) is None:
                    image = self._pull_runtime(kind, self.runtime_repository)
                else:
                    image = self.images.runtime_image(kind)
                self._images[kind] = image
            return image

    def _pull_runtime(self, kind: str, repository: RegistryRepository) -> str:
        """This runbatch's runtime image from the cluster's registry (RUNBATCH_RUNTIME_REPOSITORY)."""
        import docker.errors

        reference = repository.runtime_reference(kind)
        if self.images.exists(reference):
            return reference
        assert self._registry_tokens is not None
        path = repository.image_path(reference)
        token = self._registry_tokens([f"repository:{path}:pull"])
        if "pull" not in _granted(token, path):
            name = ".".join(repository.path.split("/"))
            raise LaunchRefused(
                f"The control plane does not let worker {self.worker_name} pull from image repository "
                f"/{repository.path} (RUNBATCH_RUNTIME_REPOSITORY): create it (CREATE IMAGE REPOSITORY {name}) "
                f"and push the runtime there ({repository.push_command(kind)}), and grant the role of the "
                f"worker's token READ on it (GRANT READ ON IMAGE REPOSITORY {name} TO ROLE ...); or unset "
                "RUNBATCH_RUNTIME_REPOSITORY to build runtime images on this host."
            )
        log.info("pulling runtime image %s from the image registry", reference)
        for attempt in range(_PULL_ATTEMPTS):
            try:
                self.client.images.pull(reference, auth_config={"registrytoken": token})
                break
            except docker.errors.APIError as exc:
                text = str(exc.explanation or exc)
                if (
                    isinstance(exc, docker.errors.NotFound)
                    or "manifest unknown" in text
                    or "not found" in text
                ):
                    raise LaunchRefused(
                        f"Image repository /{repository.path} has no {kind} runtime image of this runbatch "
                        f"({reference}). Push it from a host with the runbatch source checkout of the same "
                        f"version: {repository.push_command(kind)}"
                    ) from None
                # Registry tokens last minutes and the engine cannot renew one it was handed: a pull of
                # gigabytes can outlive it. Layers already down stay, so another token finishes the pull.
                if attempt + 1 < _PULL_ATTEMPTS and (
                    "unauthorized" in text or "authentication required" in text
                ):
                    log.info("pulling %s: registry token expired, asking for another", reference)
                    token = self._registry_tokens([f"repository:{path}:pull"])
                    continue
                raise LaunchRefused(
                    f"Worker {self.worker_name} could not pull {reference} from the image registry: {text}"
                ) from None
        log.info("pulled runtime image %s", reference)
        return reference

    def _labels(self, spec: LaunchSpec) -> dict[str, str]:
        return {
            f"{_LABEL}.job": spec.job_name,
            f"{_LABEL}.job_id": spec.job_id,
            f"{_LABEL}.shard": str(spec.shard_index),
            f"{_LABEL}.attempt": str(spec.attempt),
            f"{_LABEL}.host": self.host,
            f"{_LABEL}.worker": self.worker_name,
        }

    def _existing(self, spec: LaunchSpec) -> Any | None:
        """The running container of this very attempt (a launch repeated after a worker's hiccup)."""
        labels = self._labels(spec)
        keys = (f"{_LABEL}.job_id", f"{_LABEL}.shard", f"{_LABEL}.attempt")
        for container in self.client.containers.list(
            all=True, filters={"label": [f"{k}={labels[k]}" for k in keys]}
        ):
            if container.status == "running":
                return container
            container.remove(force=True)
        return None

    def _name(self, spec: LaunchSpec) -> str:
        """``runbatch-<job>-<shard>-<attempt>``, with the job's id appended when another job (the same
        name in another schema, or a deleted job) holds that name."""
        import docker.errors

        name = container_name(spec.job_name, spec.shard_index, spec.attempt)
        try:
            holder = self.client.containers.get(name)
        except docker.errors.NotFound:
            return name
        return name if holder.labels.get(f"{_LABEL}.job_id") == spec.job_id else f"{name}-{spec.job_id[:8]}"

    def image_for(self, spec: LaunchSpec) -> str:
        if spec.python_version and spec.python_version != "3.11":
            raise LaunchRefused(
                f"The model was logged with python_version {spec.python_version}; runtime images run Python "
                "3.11. Log the model with python_version='3.11'."
            )
        kind = "gpu" if spec.gpu_requests else "cpu"
        runtime = self.runtime_image(kind)
        # force_rebuild builds the model's image again once per job, not once per shard.
        force = spec.force_rebuild and (spec.job_id, kind) not in self._forced
        image = self.images.model_image(
            runtime, spec.pip_requirements, spec.conda_dependencies, force=force, repository=spec.image_repo
        )
        if force:
            self._forced.add((spec.job_id, kind))
        return image

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
        name = self._name(spec)
        try:
            container = self.client.containers.run(
                image,
                name=name,
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
            self._remove(name)  # created but not started (a device or mount error)
            raise
        return DockerHandle(container, spec.memory_requests, lambda: self.gpus.give_back(gpus))

    def run_container(
        self,
        *,
        name: str,
        image: str,
        command: list[str] | None,
        args: list[str] | None,
        env: dict[str, str],
        labels: dict[str, str],
        volumes: dict[str, str],
        cpu: str | None,
        memory: str | None,
        gpu: str | None,
        registry_token: str | None = None,
    ) -> DockerHandle:
        """A user's container (a job service's): its own image, entrypoint and args, the same limits,
        GPUs and host networking as runtimes, labelled with this host and worker for the orphan sweep.
        With ``registry_token`` the image is an image repository's: pulled first, so a moved tag is followed."""
        import docker.errors

        if registry_token is not None:
            self.pull(image, registry_token)
        if image.startswith("/"):
            # The control plane resolves a repository path to the registry's reference; it passes the
            # path through only when the repository no longer exists.
            raise LaunchRefused(
                f"Image {image!r} names an image repository that no longer exists (dropped after the service was "
                "created) or a control plane without RUNBATCH_REGISTRY_HOST: create the repository again, push the "
                "image to it, then resume or re-create the service."
            )
        if not self.images.exists(image):
            raise LaunchRefused(
                f"Image {image!r} is not on the Docker engine of worker {self.worker_name}; build or load it there "
                "(docker build / docker load) first."
            )
        self._remove(name)  # a container of an earlier attempt that was never cleaned up
        gpus = self.gpus.take(gpu)
        try:
            container = self.client.containers.run(
                image,
                entrypoint=command,
                command=args,
                name=name,
                labels={**labels, f"{_LABEL}.host": self.host, f"{_LABEL}.worker": self.worker_name},
                environment=env,
                network_mode="host",
                volumes={host: {"bind": path, "mode": "rw"} for host, path in volumes.items()},
                device_requests=GpuInventory.device_requests(gpus),
                detach=True,
                **resource_limits(cpu, memory),
            )
        except docker.errors.APIError as exc:
            self.gpus.give_back(gpus)
            self._remove(name)
            raise LaunchRefused(
                f"Docker could not start container {name}: {exc.explanation or exc}"
            ) from None
        except Exception:
            self.gpus.give_back(gpus)
            self._remove(name)
            raise
        return DockerHandle(container, memory, lambda: self.gpus.give_back(gpus))

    def pull(self, image: str, registry_token: str) -> None:
        """Pull ``image`` from the cluster's registry; the token (the control plane's, for this image
        only) goes to the registry as it is, so this worker needs no registry credentials of its own."""
        import docker.errors

        try:
            # docker-py splits the tag or digest off the reference itself.
            self.client.images.pull(image, auth_config={"registrytoken": registry_token})
        except docker.errors.APIError as exc:
            raise LaunchRefused(
                f"Worker {self.worker_name} could not pull {image} from the image registry: "
                f"{exc.explanation or exc}"
            ) from None

    def _remove(self, name: str) -> None:
        import docker.errors

        try:
            self.client.containers.get(name).remove(force=True)
        except docker.errors.APIError:
            pass

    def remove_orphans(self) -> list[str]:
        """Remove this host's runbatch containers whose worker is gone; their shards are retried by the
        control plane's reaper. Returns the names removed."""
        removed = []
        for container in self.client.containers.list(
            all=True, filters={"label": f"{_LABEL}.host={self.host}"}
        ):
            owner = container.labels.get(f"{_LABEL}.worker", "")
            if owner == self.worker_name or self._alive(owner):
                continue
            container.remove(force=True)
            removed.append(container.name)
        return removed

    def _alive(self, worker: str) -> bool:
        """A worker is alive while it holds the lock on its file in the shared cache folder (process ids
        say nothing across containers). A worker without a file here is not ours to judge: alive."""
        path = self._workers_dir / f"{_safe(worker)}.lock"
        if not path.exists():
            return True
        with open(path, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
        path.unlink(missing_ok=True)
        return False

    def close(self) -> None:
        """Nothing idles between launches: containers end with their shards. Releases the liveness lock."""
        if self._liveness is not None:
            (self._workers_dir / f"{_safe(self.worker_name)}.lock").unlink(missing_ok=True)
            self._liveness.close()
            self._liveness = None


def _granted(token: str, path: str) -> list[str]:
    """The actions a registry token grants on ``path`` (its claims, read without checking the signature:
    the registry checks it; this only turns a refusal into a message that says what to grant)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return [
            str(action)
            for item in claims.get("access", [])
            if item.get("type") == "repository" and item.get("name") == path
            for action in item.get("actions", [])
        ]
    except (IndexError, ValueError, AttributeError):
        return []


def _safe(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_.-]", "_", name)
