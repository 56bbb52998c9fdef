"""The embedded default and `runbatch server`: control plane + in-process workers + HTTP on one process.

This is the composition root: the only server module that imports the worker. The SDK
reaches it through the ``runbatch.control_plane`` entry point, so ``runbatch`` never
imports ``server``.
"""

from __future__ import annotations

import atexit
import logging
import socket
import threading
import time
from pathlib import Path

import uvicorn

from migrations import is_at_head, upgrade_to_head
from server.app import build_control_plane, create_app
from server.auth.bootstrap import bootstrap_admin, check_cluster_secrets
from server.auth.tokens import ensure_admin_token_file, ensure_configured_admin_token
from server.control_plane import ControlPlane, Dispatcher
from server.dispatch import CeleryDispatcher
from server.settings import ServerSettings
from worker.executors.process import ProcessExecutor
from worker.inprocess import InProcessDispatcher
from worker.settings import WorkerSettings

__all__ = ["ControlPlaneProcess", "start_embedded"]

log = logging.getLogger("runbatch.server")


class ControlPlaneProcess:
    """One control plane serving HTTP.

    Without a broker it runs shards itself (in-process worker threads, a subprocess per shard):
    the embedded default and a single-host `runbatch server`. With RUNBATCH_BROKER_URL it sends
    shards to Celery queues, one per compute pool, for `runbatch worker` processes anywhere.
    """

    def __init__(self, settings: ServerSettings, worker_settings: WorkerSettings | None = None) -> None:
        check_cluster_secrets(settings)  # first: a refused secret starts nothing
        self.settings = settings
        self.worker_settings = worker_settings or WorkerSettings()
        settings.home.mkdir(parents=True, exist_ok=True)
        self.dispatcher: InProcessDispatcher | None = None
        if settings.broker_url:
            dispatcher: Dispatcher = CeleryDispatcher(
                settings.broker_url, self.worker_settings.visibility_timeout_s
            )
        else:
            ws = self.worker_settings
            if ws.executor != "process":
                raise ValueError(
                    f"RUNBATCH_EXECUTOR={ws.executor} applies to `runbatch worker` processes (with "
                    "RUNBATCH_BROKER_URL); a control plane without a broker runs shards as subprocesses. Unset "
                    "RUNBATCH_EXECUTOR here."
                )
            self.dispatcher = InProcessDispatcher(
                ws, ProcessExecutor(ws.python, fork=ws.fork_runtimes, preload=ws.preload)
            )
            dispatcher = self.dispatcher
        self.cp: ControlPlane = build_control_plane(settings, dispatcher)
        if self.cp.engine.url.get_backend_name() == "sqlite":
            upgrade_to_head(self.cp.engine)
        elif not is_at_head(self.cp.engine):
            raise RuntimeError(
                "The metadata database is not at the newest schema: run `runbatch migrate` with the same "
                "RUNBATCH_DATABASE_URL first."
            )
        with self.cp.sessionmaker() as session:
            bootstrap_admin(session, settings)
            if settings.admin_token is not None:
                ensure_configured_admin_token(session, settings.admin_token.get_secret_value())
            self.token = ensure_admin_token_file(session, settings.home)
            session.commit()
        self.app = create_app(self.cp)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def _bind(self, host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        return sock

    def _start_workers(self) -> None:
        if self.dispatcher is None:
            return  # workers are separate processes that consume the broker
        cache = self.worker_settings.cache_dir or self.settings.home / "cache"
        self.dispatcher.start(self.url, self.token, {"RUNBATCH_CACHE_DIR": str(cache)})

    def start_background(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on a background thread (embedded sessions); returns the base URL."""
        sock = self._bind(host, port)
        bound_port = sock.getsockname()[1]
        self.url = f"http://{host}:{bound_port}"
        self.cp.url = self.url
        config = uvicorn.Config(self.app, log_level="warning", lifespan="on", access_log=False)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="runbatch-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("The embedded runbatch control plane did not start; see the log above.")
            time.sleep(0.01)
        self._start_workers()
        atexit.register(self.stop)
        return self.url

    def serve_forever(self, host: str, port: int) -> None:
        """Serve in the foreground (``runbatch server``) until interrupted."""
        sock = self._bind(host, port)
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        self.url = f"http://{shown_host}:{sock.getsockname()[1]}"
        self.cp.url = self.url
        config = uvicorn.Config(
            self.app,
            log_level=self.settings.log_level.lower(),
            lifespan="on",
            # JSON logs: uvicorn's loggers go to the process's JSON handler instead of printing text.
            log_config=None if self.settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        )
        self._server = uvicorn.Server(config)
        starter = threading.Thread(target=self._start_when_ready, daemon=True)
        starter.start()
        try:
            self._server.run(sockets=[sock])
        finally:
            if self.dispatcher is not None:
                self.dispatcher.stop()

    def _start_when_ready(self) -> None:
        assert self._server is not None
        while not self._server.started:
            time.sleep(0.05)
        self._start_workers()
        log.info(
            "runbatch control plane ready at %s (admin token in %s)", self.url, self.settings.home / "token"
        )

    def stop(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.stop()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=15)
            self._thread = None
        self.cp.engine.dispose()


_EMBEDDED: dict[Path, ControlPlaneProcess] = {}
_EMBEDDED_LOCK = threading.Lock()


def start_embedded(home: Path) -> tuple[str, str]:
    """The entry point the SDK calls: start (once per home and process) and return (url, token)."""
    home = home.expanduser().resolve()
    with _EMBEDDED_LOCK:
        process = _EMBEDDED.get(home)
        if process is None:
            process = ControlPlaneProcess(ServerSettings(home=home))
            process.start_background()
            _EMBEDDED[home] = process
        return process.url, process.token
