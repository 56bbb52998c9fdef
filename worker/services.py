"""run_service: claim a job service, run its containers to their end, report. A plain function.

Stage volumes are copied into a folder before the containers start and the files the containers
wrote or changed are copied back after they end (Snowflake mounts stages live; a copy is what a
host without a FUSE driver can do, and it is exact for job services, which read then write).
The folder lives next to the executor's model cache because that path is valid for the Docker
engine even when the worker itself runs in a container.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from runbatch.client import ControlPlaneClient
from runbatch.errors import ConflictError, NotFoundError, RunbatchError
from runbatch.stage.storage import open_storage
from runbatch.wire.services import ContainerWork, ServiceBeat, ServiceExit, ServiceWork, VolumeWork
from worker.executors.base import Executor, LaunchRefused
from worker.log_shipper import LogShipper

__all__ = ["NO_DOCKER", "ServiceRunner"]

log = logging.getLogger("runbatch.worker")

NO_DOCKER = (
    "job services need a Docker engine: this worker runs shards as processes (RUNBATCH_EXECUTOR=process). Run the "
    "compute pool's workers with RUNBATCH_EXECUTOR=docker."
)
_HEARTBEAT_S = 2.0
_SERVICE_BEAT_S = 1.0  # also how often readiness probes run
_LOG_FLUSH_S = 0.5


def _container_name(service: str, container: str, attempt: int) -> str:
    return "runbatch-svc-" + re.sub(r"[^a-zA-Z0-9_.-]", "_", f"{service}-{container}-{attempt}").lower()


class _Volumes:
    """The folders a service's containers mount, copied from and back to their stages."""

    def __init__(self, root: Path, volumes: list[VolumeWork]) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="svc-", dir=root))
        self.volumes = volumes
        self.paths: dict[str, Path] = {}
        self._copied: dict[str, dict[str, str]] = {}

    def prepare(self) -> None:
        for volume in self.volumes:
            path = self.dir / volume.name
            path.mkdir()
            os.chmod(path, 0o777)  # containers run as any user
            self.paths[volume.name] = path
            if volume.storage is None:
                continue
            storage = open_storage(volume.storage)
            prefix = volume.prefix.rstrip("/") + "/" if volume.prefix else ""
            copied: dict[str, str] = {}
            for entry in storage.list(prefix):
                rel = entry.key[len(prefix) :]
                if not rel or rel.endswith("/"):
                    continue
                target = path / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                data = storage.read_bytes(entry.key)
                target.write_bytes(data)
                copied[rel] = hashlib.sha256(data).hexdigest()
            for folder, _, _ in os.walk(path):
                os.chmod(folder, 0o777)
            self._copied[volume.name] = copied

    def write_back(self) -> int:
        """Copy new and changed files back to their stages; returns how many were written."""
        written = 0
        for volume in self.volumes:
            if volume.storage is None or volume.read_only:
                continue
            storage = open_storage(volume.storage)
            base = self.paths[volume.name]
            prefix = volume.prefix.rstrip("/") + "/" if volume.prefix else ""
            before = self._copied.get(volume.name, {})
            for folder, _, files in os.walk(base):
                for file in files:
                    path = Path(folder) / file
                    if path.is_symlink():
                        continue  # a link could point anywhere on the worker's host
                    rel = path.relative_to(base).as_posix()
                    data = path.read_bytes()
                    if before.get(rel) == hashlib.sha256(data).hexdigest():
                        continue
                    storage.write_bytes(prefix + rel, data)
                    written += 1
        return written

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _shipper(client: ControlPlaneClient, work: ServiceWork, container: str) -> LogShipper:
    """Ships one container's output lines into the service's logs."""
    return LogShipper(
        lambda lines: client.service_logs(work.service_id, work.attempt, container, lines),
        _LOG_FLUSH_S,
        f"{work.name}/{container}",
    )


class ServiceRunner:
    """Runs job services on this worker's Docker executor (``executor`` returns it, or None without one)."""

    def __init__(
        self,
        client: ControlPlaneClient,
        executor: Callable[[], Executor | None],
        name: str,
        volume_root: Path,
        host: str = "127.0.0.1",
    ) -> None:
        self.host = host
        self._stopping = threading.Event()
        self._serving: set[_Service] = set()
        self._lock = threading.Lock()
        self.client = client
        self._executor = executor
        self.name = name
        self.volume_root = volume_root

    def stop(self) -> None:
        """The worker is shutting down: stop the services it runs (they end FAILED, to be resumed)."""
        self._stopping.set()
        with self._lock:
            running = list(self._serving)
        for service in running:
            service.shutdown()

    def run(self, service_id: uuid.UUID) -> None:
        if self._stopping.is_set():
            return  # the message stays unacknowledged; another worker takes it
        try:
            work = self.client.claim_service(service_id, self.name)
        except (ConflictError, NotFoundError) as exc:
            log.info("not running service %s: %s", service_id, exc)
            return
        log.info("running job service %s, attempt %s", work.name, work.attempt)
        try:
            outcome = self._run(work)
        except Exception as exc:  # report it: a job service must end, whatever broke here
            log.exception("job service %s failed in the worker", work.name)
            outcome = ServiceExit(attempt=work.attempt, status="FAILED", message=f"The worker failed: {exc}")
        try:
            self.client.service_exit(work.service_id, outcome)
        except RunbatchError as exc:
            log.warning("could not report the end of job service %s: %s", work.name, exc)

    def _run(self, work: ServiceWork) -> ServiceExit:
        from worker.executors.docker import DockerExecutor, DockerHandle

        executor = self._executor()
        if not isinstance(executor, DockerExecutor):
            return ServiceExit(attempt=work.attempt, status="FAILED", message=NO_DOCKER)
        if work.kind == "SERVICE":
            service = _Service(self.client, executor, work, self.volume_root, self.host)
            with self._lock:
                self._serving.add(service)
            try:
                return service.serve()
            finally:
                with self._lock:
                    self._serving.discard(service)
        volumes = _Volumes(self.volume_root, work.volumes)
        handles: dict[str, DockerHandle] = {}
        states: dict[str, dict[str, Any]] = {}
        try:
            volumes.prepare()
            try:
                for c in work.containers:
                    handles[c.name] = executor.run_container(
                        name=_container_name(work.name, c.name, work.attempt),
                        image=c.image,
                        command=c.command,
                        args=c.args,
                        env=c.env,
                        labels={"org.runbatch.service_id": str(work.service_id)},
                        volumes={str(volumes.paths[v]): path for v, path in c.mounts.items()},
                        cpu=c.cpu,
                        memory=c.memory,
                        gpu=c.gpu,
                        registry_token=_registry_token(c),
                    )
            except LaunchRefused as exc:
                for handle in handles.values():
                    handle.kill()
                    handle.wait()
                return ServiceExit(attempt=work.attempt, status="FAILED", message=str(exc))
            stop = threading.Event()
            beat = threading.Thread(target=self._beat, args=(work, handles, stop), daemon=True)
            beat.start()
            threads = [
                threading.Thread(target=self._follow, args=(work, name, handle, states), daemon=True)
                for name, handle in handles.items()
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            stop.set()
            beat.join(timeout=10)
            written = volumes.write_back()
            if written:
                log.info("job service %s wrote %d file(s) back to its stage volumes", work.name, written)
        finally:
            volumes.remove()
        failed = [(name, s) for name, s in states.items() if s["status"] != "DONE"]
        if not failed:
            return ServiceExit(attempt=work.attempt, status="DONE", exit_code=0, containers=states)
        name, state = failed[0]
        return ServiceExit(
            attempt=work.attempt,
            status="FAILED",
            exit_code=state.get("exit_code"),
            message=state["message"],
            containers=states,
        )

    def _follow(self, work: ServiceWork, name: str, handle: Any, states: dict[str, dict[str, Any]]) -> None:
        shipper = _shipper(self.client, work, name)
        try:
            for line in handle.lines():
                shipper.add(line)
        except Exception as exc:  # the log stream broke (engine restart): the exit code still tells
            log.warning("reading the output of %s/%s failed: %s", work.name, name, exc)
        finally:
            shipper.close()
        code = handle.wait()
        known = handle.exit_message(code)
        if code == 0:
            states[name] = {"status": "DONE", "exit_code": 0, "message": "Completed successfully"}
        else:
            message = known[0] if known else f"Container {name} exited with code {code}."
            states[name] = {"status": "FAILED", "exit_code": code, "message": message}

    def _beat(self, work: ServiceWork, handles: dict[str, Any], stop: threading.Event) -> None:
        while not stop.wait(_HEARTBEAT_S):
            try:
                if self.client.service_heartbeat(work.service_id, ServiceBeat(attempt=work.attempt)):
                    log.info("job service %s was cancelled or dropped; stopping its containers", work.name)
                    for handle in handles.values():
                        handle.kill()
                    return
            except RunbatchError as exc:
                log.warning("heartbeat of job service %s failed: %s", work.name, exc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


class _Service:
    """Keeps a long-running service's containers up until the control plane says stop.

    Containers share the worker host's network (the engine runs without a bridge), so two services
    cannot both listen on a spec's port 8080: each port the spec names gets a free host port, passed
    to every container as ``RUNBATCH_PORT_<spec port>``; the container listens there. Probes and the
    control plane's proxy use the host port.
    """

    def __init__(
        self, client: ControlPlaneClient, executor: Any, work: ServiceWork, volume_root: Path, host: str
    ) -> None:
        self.client, self.executor, self.work = client, executor, work
        self.volumes = _Volumes(volume_root, work.volumes)
        spec_ports = set(work.ports.values()) | {
            c.readiness_port for c in work.containers if c.readiness_port
        }
        self.ports = {port: _free_port() for port in sorted(spec_ports)}
        self.host = host
        self.stop = threading.Event()
        self.handles: dict[str, Any] = {}
        self.states: dict[str, dict[str, Any]] = {
            c.name: {"status": "PENDING", "restarts": 0} for c in work.containers
        }
        self._lock = threading.Lock()
        self._shutdown = False

    def shutdown(self) -> None:
        self._shutdown = True
        self._halt()

    def _halt(self) -> None:
        self.stop.set()
        with self._lock:
            handles = list(self.handles.values())
        for handle in handles:
            handle.kill()

    def serve(self) -> ServiceExit:
        env = {f"RUNBATCH_PORT_{spec}": str(host) for spec, host in self.ports.items()}
        # Where the control plane reaches this host's services: a server may listen there only.
        env["RUNBATCH_SERVICE_HOST"] = self.host
        try:
            self.volumes.prepare()
            threads = [
                threading.Thread(target=self._keep, args=(c, env), name=f"svc-{c.name}", daemon=True)
                for c in self.work.containers
            ]
            for thread in threads:
                thread.start()
            while not self.stop.is_set():
                self._report()
                self.stop.wait(_SERVICE_BEAT_S)
            for thread in threads:
                thread.join(timeout=60)
            self.volumes.write_back()
        finally:
            self.volumes.remove()
        if self._shutdown:
            message = "The worker running the service stopped; ALTER SERVICE ... RESUME starts it again."
            return ServiceExit(
                attempt=self.work.attempt, status="FAILED", message=message, containers=self.states
            )
        return ServiceExit(attempt=self.work.attempt, status="DONE", containers=self.states)

    def _keep(self, container: ContainerWork, ports: dict[str, str]) -> None:
        """Run one container, and again whenever it ends, until the service stops."""
        restarts = 0
        pulled = False  # set once a container started: a refused launch (a failed pull) pulls again
        while not self.stop.is_set():
            try:
                image = _image(self.executor, container)
                handle = self.executor.run_container(
                    name=_container_name(self.work.name, container.name, self.work.attempt) + f"-{restarts}",
                    image=image,
                    command=container.command,
                    args=container.args,
                    env={**container.env, **ports},
                    labels={"org.runbatch.service_id": str(self.work.service_id)},
                    volumes={str(self.volumes.paths[v]): path for v, path in container.mounts.items()},
                    cpu=container.cpu,
                    memory=container.memory,
                    gpu=container.gpu,
                    # Pulled until a container starts: a restart then uses the image on this engine (the
                    # token may have expired by then).
                    registry_token=None if pulled else _registry_token(container),
                )
            except LaunchRefused as exc:
                self._state(container.name, status="FAILED", message=str(exc), restarts=restarts)
                self.stop.wait(_restart_delay(restarts))
                restarts += 1
                continue
            pulled = True
            with self._lock:
                self.handles[container.name] = handle
            if self.stop.is_set():
                handle.kill()
            self._state(container.name, status="PENDING", message="Starting", restarts=restarts)
            shipper = _shipper(self.client, self.work, container.name)
            try:
                for line in handle.lines():
                    shipper.add(line)
            except Exception as exc:  # the log stream broke: the exit code still tells
                log.warning("reading the output of %s/%s failed: %s", self.work.name, container.name, exc)
            finally:
                shipper.close()
            code = handle.wait()
            with self._lock:
                self.handles.pop(container.name, None)
            if self.stop.is_set():
                self._state(
                    container.name, status="DONE", message="Stopped", exit_code=code, restarts=restarts
                )
                return
            known = handle.exit_message(code)
            message = (
                known[0] if known else f"Container {container.name} exited with code {code}; restarting."
            )
            log.warning("service %s: %s", self.work.name, message)
            self._state(
                container.name, status="FAILED", message=message, exit_code=code, restarts=restarts + 1
            )
            self.stop.wait(_restart_delay(restarts))
            restarts += 1

    def _state(self, name: str, **state: Any) -> None:
        with self._lock:
            self.states[name] = state

    def _ready(self, container: ContainerWork) -> bool:
        with self._lock:
            running = container.name in self.handles
        if not running:
            return False
        if container.readiness_port is None:
            return True
        url = f"http://127.0.0.1:{self.ports[container.readiness_port]}{container.readiness_path or '/'}"
        try:
            return httpx.get(url, timeout=1.0).is_success
        except httpx.HTTPError:
            return False

    def _report(self) -> None:
        ready_all = True
        for container in self.work.containers:
            ready = self._ready(container)
            ready_all = ready_all and ready
            with self._lock:
                state = self.states[container.name]
                if ready:
                    self.states[container.name] = {**state, "status": "READY", "message": "Running"}
                elif state.get("status") == "READY":
                    self.states[container.name] = {
                        **state,
                        "status": "PENDING",
                        "message": "Readiness probe failing",
                    }
        with self._lock:
            beat = ServiceBeat(
                attempt=self.work.attempt,
                ready=ready_all,
                endpoints={name: f"{self.host}:{self.ports[port]}" for name, port in self.work.ports.items()},
                containers={name: dict(s) for name, s in self.states.items()},
            )
        try:
            stop = self.client.service_heartbeat(self.work.service_id, beat)
        except (NotFoundError, ConflictError):
            stop = True
        except RunbatchError as exc:
            log.warning("heartbeat of service %s failed: %s", self.work.name, exc)
            return
        if stop:
            log.info("service %s: stopping its containers on request", self.work.name)
            self._halt()


def _image(executor: Any, container: ContainerWork) -> str:
    """The container's image; a model service's is the runtime image with the model's requirements,
    chosen (and built once per environment) as for a batch job's shards."""
    from worker.images import ImageBuildError

    runtime = container.runtime
    if runtime is None:
        return container.image
    if runtime.python_version and runtime.python_version != "3.11":
        raise LaunchRefused(
            f"The model was logged with python_version {runtime.python_version}; runtime images run Python 3.11. "
            "Log the model with python_version='3.11'."
        )
    try:
        return str(
            executor.images.model_image(
                executor.runtime_image(runtime.kind), runtime.pip_requirements, runtime.conda_dependencies
            )
        )
    except ImageBuildError as exc:
        raise LaunchRefused(f"The model's runtime image could not be built: {exc}") from None


def _registry_token(container: ContainerWork) -> str | None:
    """The token that pulls an image repository's image (None: an image of this worker's engine)."""
    token = container.registry_token
    return token.get_secret_value() if token is not None else None


def _restart_delay(restarts: int) -> float:
    return float(min(30.0, 0.5 * 2**restarts))
