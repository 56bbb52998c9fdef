"""The embedded default's dispatcher: worker threads in the control plane's own process."""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from pathlib import Path

from runbatch.client import ControlPlaneClient
from runbatch.errors import RunbatchError
from runbatch.wire.workers import WorkerRegister
from worker.executors import create_executor
from worker.executors.base import Executor
from worker.registration import Registration, host_capacity
from worker.services import ServiceRunner
from worker.settings import WorkerSettings
from worker.shard_runner import ShardRunner

__all__ = ["InProcessDispatcher"]

log = logging.getLogger("runbatch.worker")


class InProcessDispatcher:
    """Implements the control plane's Dispatcher with ``settings.slots`` threads running shards."""

    def __init__(self, settings: WorkerSettings, executor: Executor) -> None:
        self.settings = settings
        self.executor = executor
        self._queue: queue.Queue[uuid.UUID | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        self._runner: ShardRunner | None = None
        self._client: ControlPlaneClient | None = None
        self._registration: Registration | None = None
        self._stopping = threading.Event()
        self._services: ServiceRunner | None = None
        self._containers: Executor | None = None
        self._containers_lock = threading.Lock()
        self._engine_problem: str | None = None
        self._cache_dir: Path | None = None
        self._capacity: WorkerRegister | None = None

    def start(self, api_url: str, token: str, env: dict[str, str]) -> None:
        self._client = ControlPlaneClient(api_url, token)
        capacity = host_capacity(self.settings, ["*"])  # the embedded worker serves every pool
        self._capacity = capacity
        self._registration = Registration(self._client, capacity, self.settings.worker_heartbeat_interval_s)
        self._registration.start()
        self._runner = ShardRunner(self._client, self.executor, self.settings, capacity.name, env)
        self._cache_dir = Path(env.get("RUNBATCH_CACHE_DIR") or Path.home() / ".runbatch" / "cache")
        self._services = ServiceRunner(
            self._client,
            self._container_executor,
            capacity.name,
            self._cache_dir / "service-volumes",
            self.settings.service_host,
        )
        for i in range(self.settings.slots):
            thread = threading.Thread(target=self._loop, name=f"runbatch-slot-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            for shard in self._client.pending_shards():
                self._queue.put(uuid.UUID(str(shard["id"])))
        except RunbatchError as exc:
            log.warning("could not pick up queued shards: %s", exc)

    def pending_messages(self, pool: str) -> int | None:
        # One queue serves every pool: a shard is only sent again once the queue has drained.
        return self._queue.qsize()

    def dispatch(self, pool: str, shard_ids: list[uuid.UUID]) -> None:
        for shard_id in shard_ids:
            self._queue.put(shard_id)

    def container_engine_problem(self) -> str | None:
        """Job services run in containers even here: None when this host's Docker engine answers."""
        self._container_executor()
        return self._engine_problem

    def _container_executor(self) -> Executor | None:
        with self._containers_lock:
            if self._containers is None and self._engine_problem is None and self._capacity is not None:
                try:
                    self._containers = create_executor(
                        self.settings.model_copy(update={"executor": "docker"}),
                        worker_name=f"{self._capacity.name}-services",
                        cache_dir=self._cache_dir or Path.home() / ".runbatch" / "cache",
                        gpus=self._capacity.gpus,
                    )
                except Exception as exc:  # no engine, or no permission on its socket
                    self._engine_problem = f"The Docker engine did not answer: {exc}"
            return self._containers

    def dispatch_service(self, pool: str, service_id: uuid.UUID) -> None:
        services = self._services
        if services is None:
            raise RuntimeError("The in-process workers have not started.")
        threading.Thread(
            target=services.run, args=(service_id,), name=f"runbatch-service-{service_id}", daemon=True
        ).start()

    def _loop(self) -> None:
        assert self._runner is not None
        # Runtimes of concurrent shards share the cores: give each its share of BLAS threads.
        threads = max(1, (os.cpu_count() or 1) // self.settings.slots)
        while (shard_id := self._queue.get()) is not None and not self._stopping.is_set():
            try:
                self._runner.run(shard_id, threads=threads)
            except Exception:
                log.exception("running shard %s failed in the worker", shard_id)

    def stop(self) -> None:
        self._stopping.set()
        while True:  # queued shards stay PENDING for the next start to pick up
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        if self._registration is not None:
            self._registration.stop()
        if self._runner is not None:
            self._runner.stop()
        if self._services is not None:
            self._services.stop()
        self.executor.close()
        if self._containers is not None:
            self._containers.close()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join(timeout=10)
        if self._client is not None:
            self._client.close()
