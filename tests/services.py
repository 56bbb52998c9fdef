"""Real services the tests start: a `runbatch server`, `runbatch worker`s, a private Redis, a
database of their own on the machine's Postgres, moto's S3 server, and a cluster of them all.

Every service runs as its own process (or, for moto, its own thread) speaking its real protocol;
nothing here fakes a service.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
from sqlalchemy import create_engine, text

from runbatch.snowpark import Session

__all__ = [
    "Cluster",
    "MotoProcess",
    "MotoServer",
    "PostgresDatabase",
    "RedisServer",
    "ServerProcess",
    "TcpProxy",
    "WorkerProcess",
    "free_port",
]

POSTGRES_ADMIN_URL = os.environ.get(
    "RUNBATCH_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(condition: Any, what: str, timeout: float = 60, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            detail = f"\n{log.read_text()[-4000:]}" if log is not None and log.exists() else ""
            raise RuntimeError(f"{what} did not happen within {timeout:.0f}s{detail}")
        time.sleep(0.1)


class ServerProcess:
    """`runbatch server` on a free port; ``env`` selects its database, broker and storage."""

    def __init__(self, home: Path, env: dict[str, str] | None = None) -> None:
        self.home = home
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = dict(os.environ, RUNBATCH_HOME=str(home), RUNBATCH_LOG_LEVEL="WARNING", **(env or {}))
        self.log_path = home / "server.log"
        self._log: IO[str] | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()
        self.token = (home / "token").read_text().strip()

    def start(self) -> None:
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbatch.cli", "server", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait(self._healthy, "runbatch server start", log=self.log_path)
        except BaseException:
            self.stop()
            raise

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"runbatch server exited:\n{self.log_path.read_text()[-4000:]}")
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def session(self) -> Session:
        return Session.builder.configs({"url": self.url, "token": self.token}).create()

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)
        if self._log is not None:
            self._log.close()


def _terminate(proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class WorkerProcess:
    """`runbatch worker` serving ``pools``; registered with the control plane once constructed."""

    def __init__(
        self, server: ServerProcess, broker_url: str, home: Path, pools: str, env: dict[str, str]
    ) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.server = server
        self.log_path = home / "worker.log"
        self._log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbatch.cli", "worker", "--pools", pools],
            env=dict(
                os.environ,
                RUNBATCH_HOME=str(home),
                RUNBATCH_API_URL=server.url,
                RUNBATCH_TOKEN=server.token,
                RUNBATCH_BROKER_URL=broker_url,
                **env,
            ),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill -9 hits the worker alone
        )
        self.name = f"{socket.gethostname()}:{self.proc.pid}:"  # completed once registered
        try:
            _wait(self._registered, f"registration of worker {self.name}*", log=self.log_path)
        except BaseException:
            self.stop()
            raise

    def _registered(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"runbatch worker exited:\n{self.log_path.read_text()[-4000:]}")
        workers = httpx.get(f"{self.server.url}/api/v1/workers", headers=self.server.auth, timeout=5).json()
        names = [w["name"] for w in workers if w["name"].startswith(self.name)]
        if names:
            self.name = names[0]
        return bool(names)

    def kill(self) -> None:
        """kill -9: no sign-off, no cleanup (its runtimes die with it)."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        _terminate(self.proc, timeout=30)
        self._log.close()


class RedisServer:
    """A private redis-server on a free port, without persistence, that a test may restart."""

    def __init__(self, folder: Path) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError(
                "redis-server is not installed; install it (Debian: apt-get install redis-server)."
            )
        self.binary, self.folder, self.port = binary, folder, free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(self._answers, "redis-server start", timeout=20)

    def _answers(self) -> bool:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
        return False

    def stop(self) -> None:
        if self.proc is not None:
            _terminate(self.proc)

    def restart(self, down_s: float = 1.0) -> None:
        self.stop()
        time.sleep(down_s)
        self.start()


class PostgresDatabase:
    """A database of the test run's own on the machine's Postgres, dropped at the end."""

    def __init__(self) -> None:
        self.name = f"runbatch_test_{uuid.uuid4().hex[:12]}"
        self._admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with self._admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        self.url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{self.name}"

    def url_via(self, port: int) -> str:
        """The same database reached through another port on localhost (a TcpProxy)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{self.name}"

    def drop(self) -> None:
        with self._admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


class TcpProxy:
    """Forwards a local port to ``target``; ``cut()`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._open = threading.Event()
        self._open.set()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._listen()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                if not self._open.is_set():  # accepted just before a cut: it must not outlive it
                    client.close()
                    upstream.close()
                    continue
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        assert self._listener is not None
        with self._lock:
            self._open.clear()
            conns, self._conns = self._conns, []
        # shutdown() first: close() alone does not wake a thread blocked in accept(), which then
        # keeps accepting connections on the closed listener's backlog.
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def restore(self) -> None:
        self._open.set()
        self._listen()

    def close(self) -> None:
        self.cut()


class MotoServer:
    """moto's S3 server on a free port: a real S3 endpoint (HTTP, signatures, multipart) in-process."""

    access_key = "testing"
    secret_key = "testing-secret"

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()

    def make_bucket(self) -> str:
        from minio import Minio

        name = f"rb-{uuid.uuid4().hex[:12]}"
        client = Minio(
            f"127.0.0.1:{self.port}", access_key=self.access_key, secret_key=self.secret_key, secure=False
        )
        client.make_bucket(name)
        return name

    def stop(self) -> None:
        self._server.stop()


class MotoProcess(MotoServer):
    """moto's S3 server in a process of its own, so it does not share a GIL with the caller (benchmarks)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def up() -> bool:
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(self.endpoint, timeout=1).status_code < 500
            return False

        _wait(up, "moto server start", timeout=30)

    def stop(self) -> None:
        _terminate(self._proc)


# Worker settings for tests: quick heartbeats, two slots (2 cores in CI).
WORKER_ENV = {
    "RUNBATCH_SLOTS": "2",
    "RUNBATCH_WORKER_HEARTBEAT_INTERVAL_S": "1",
}


class Cluster:
    """The cluster stack: Postgres, a private Redis, S3 (moto), `runbatch migrate`, one
    `runbatch server` with a broker, and ``workers`` `runbatch worker` processes."""

    def __init__(
        self,
        folder: Path,
        moto: MotoServer,
        *,
        workers: int = 2,
        postgres_via_proxy: bool = False,
        worker_env: dict[str, str] | None = None,
        server_env: dict[str, str] | None = None,
    ) -> None:
        self.worker_env = {**WORKER_ENV, **(worker_env or {})}
        self.server_env = dict(server_env or {})
        self.folder = folder
        self.db = PostgresDatabase()
        self.proxy: TcpProxy | None = None
        self.workers: list[WorkerProcess] = []
        self.server: ServerProcess | None = None
        self.redis: RedisServer | None = None
        try:
            self._start(moto, workers, postgres_via_proxy)
        except BaseException:
            self.stop()
            raise

    def _start(self, moto: MotoServer, workers: int, postgres_via_proxy: bool) -> None:
        folder = self.folder
        self.redis = RedisServer(folder)
        database_url = self.db.url
        if postgres_via_proxy:
            host_port = POSTGRES_ADMIN_URL.split("@", 1)[1].split("/", 1)[0]
            host, _, port = host_port.partition(":")
            self.proxy = TcpProxy((host, int(port or 5432)))
            database_url = self.db.url_via(self.proxy.port)
        self.bucket = moto.make_bucket()
        self.env = {
            "RUNBATCH_DATABASE_URL": database_url,
            "RUNBATCH_BROKER_URL": self.redis.url,
            "RUNBATCH_STAGE_URL": f"s3://{self.bucket}/runbatch",
            "RUNBATCH_S3_ENDPOINT_URL": moto.endpoint,
            "RUNBATCH_S3_ACCESS_KEY": moto.access_key,
            "RUNBATCH_S3_SECRET_KEY": moto.secret_key,
            "RUNBATCH_REDISPATCH_AFTER_S": "3",
            "RUNBATCH_WORKER_TIMEOUT_S": "5",
        }
        migrate = subprocess.run(
            [sys.executable, "-m", "runbatch.cli", "migrate"],
            env=dict(os.environ, RUNBATCH_HOME=str(folder / "server"), **self.env),
            capture_output=True,
            text=True,
            check=False,
        )
        if migrate.returncode != 0:
            raise RuntimeError(f"runbatch migrate failed:\n{migrate.stdout}{migrate.stderr}")
        (folder / "server").mkdir(exist_ok=True)
        self.server = ServerProcess(folder / "server", {**self.env, **self.server_env})
        self.workers = [self.add_worker() for _ in range(workers)]

    def add_worker(self, pools: str = "SYSTEM_COMPUTE_POOL_CPU") -> WorkerProcess:
        assert self.server is not None and self.redis is not None
        home = self.folder / f"worker-{uuid.uuid4().hex[:6]}"
        return WorkerProcess(self.server, self.redis.url, home, pools, self.worker_env)

    def session(self) -> Session:
        assert self.server is not None
        return self.server.session()

    def stop(self) -> None:
        for worker in self.workers:
            if worker.proc.poll() is None:
                worker.stop()
        if self.server is not None:
            self.server.stop()
        if self.redis is not None:
            self.redis.stop()
        if self.proxy is not None:
            self.proxy.close()
        self.db.drop()


@contextlib.contextmanager
def running_cluster(folder: Path, moto: MotoServer, **kwargs: Any) -> Iterator[Cluster]:
    cluster = Cluster(folder, moto, **kwargs)
    try:
        yield cluster
    finally:
        cluster.stop()
