"""Shared fixtures: one embedded control plane and one real `runbatch server` process per test process.

Tests isolate themselves by creating their own database (``fresh_db``) instead of restarting
the control plane, which keeps the suite fast and lets assertions be exact.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from runbatch.snowpark import Session

# Fast failure detection and retries for the control planes the tests start.
TEST_ENV = {
    "RUNBATCH_HEARTBEAT_TIMEOUT_S": "6",
    "RUNBATCH_MAINTENANCE_INTERVAL_S": "0.5",
    "RUNBATCH_MAX_SHARD_ATTEMPTS": "2",
    "RUNBATCH_HEARTBEAT_INTERVAL_S": "0.5",
    "RUNBATCH_LOG_FLUSH_INTERVAL_S": "0.2",
}


@pytest.fixture(scope="session", autouse=True)
def _test_env() -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in TEST_ENV}
    os.environ.update(TEST_ENV)
    for key in ("RUNBATCH_API_URL", "RUNBATCH_TOKEN"):
        os.environ.pop(key, None)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session")
def embedded_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("embedded-home")


@pytest.fixture(scope="session")
def embedded_session(embedded_home: Path) -> Session:
    return Session.builder.configs({"home": str(embedded_home)}).create()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, RUNBATCH_HOME=str(home), RUNBATCH_LOG_LEVEL="WARNING")
        self.log = open(home / "server.log", "w")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "runbatch.cli", "server", "--port", str(self.port)],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"runbatch server did not start:\n{(home / 'server.log').read_text()}")
            time.sleep(0.1)
        self.token = (home / "token").read_text().strip()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


@pytest.fixture(scope="session")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("server-home"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_session(server_process: ServerProcess) -> Session:
    return Session.builder.configs({"url": server_process.url, "token": server_process.token}).create()


@pytest.fixture(params=["embedded", "http"])
def session(request: pytest.FixtureRequest) -> Session:
    """The same SDK calls against the in-process control plane and against a real server over HTTP."""
    fixture = "embedded_session" if request.param == "embedded" else "http_session"
    return request.getfixturevalue(fixture)  # type: ignore[no-any-return]


@pytest.fixture
def fresh_db(session: Session) -> str:
    """A database of the test's own (with its PUBLIC schema and a stage named DATA), made current."""
    name = f"T_{uuid.uuid4().hex[:10].upper()}"
    session.sql(f"CREATE DATABASE {name}").collect()
    session.sql("CREATE STAGE DATA").collect()
    return name


class MotoServer:
    """moto's S3 server on a free port: a real S3 endpoint (HTTP, signatures, multipart) in-process."""

    access_key = "testing"
    secret_key = "testing-secret"

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = _free_port()
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


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", MotoServer.access_key)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", MotoServer.secret_key)
    server = MotoServer()
    yield server
    server.stop()
