"""A worker's entry in the control plane: what it serves and offers, kept alive by heartbeats."""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import threading
import uuid
from pathlib import Path

from runbatch.client import ControlPlaneClient
from runbatch.errors import NotFoundError, RunbatchError
from runbatch.wire.workers import WorkerRegister
from worker.settings import WorkerSettings

__all__ = ["Registration", "host_capacity"]

log = logging.getLogger("runbatch.worker")


def _memory_bytes() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def _gpus() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(
            ["nvidia-smi", "-L"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


def host_capacity(settings: WorkerSettings, pools: list[str]) -> WorkerRegister:
    host = socket.gethostname()
    return WorkerRegister(
        # The pid alone is not unique: in containers every worker is pid 1 on the host's network.
        name=f"{host}:{os.getpid()}:{uuid.uuid4().hex[:6]}",
        host=host,
        pools=pools,
        executor=settings.executor,
        slots=settings.slots,
        cpus=os.cpu_count() or 1,
        memory_bytes=_memory_bytes(),
        gpus=settings.gpus if settings.gpus is not None else _gpus(),
    )


class Registration:
    """Registers on start, heartbeats on a thread, signs off on stop; re-registers if forgotten."""

    def __init__(
        self,
        client: ControlPlaneClient,
        body: WorkerRegister,
        interval_s: float,
        alive_file: Path | None = None,
    ) -> None:
        self.client = client
        self.body = body
        self.interval_s = interval_s
        # Touched after every accepted heartbeat: a container healthcheck reads its age.
        self.alive_file = alive_file
        self.worker_id: uuid.UUID | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="worker-heartbeat", daemon=True)

    def start(self) -> None:
        self.worker_id = self.client.register_worker(self.body).id
        self._alive()
        self._thread.start()

    def _alive(self) -> None:
        if self.alive_file is not None:
            self.alive_file.parent.mkdir(parents=True, exist_ok=True)
            self.alive_file.touch()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                assert self.worker_id is not None
                self.client.worker_heartbeat(self.worker_id)
                self._alive()
            except NotFoundError:
                self.worker_id = self.client.register_worker(self.body).id
            except RunbatchError as exc:
                log.warning("worker heartbeat failed: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        # A heartbeat in flight finishes before the caller closes the client under it.
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self.worker_id is not None:
            try:
                self.client.sign_off_worker(self.worker_id)
            except RunbatchError:
                pass
