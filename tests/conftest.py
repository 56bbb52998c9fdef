"""Shared fixtures: one embedded control plane, one real `runbatch server` and one cluster per test process.

Tests isolate themselves by creating their own database (``fresh_db``) instead of restarting
the control plane, which keeps the suite fast and lets assertions be exact.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from runbatch.snowpark import Session
from tests.services import Cluster, MotoServer, ServerProcess, running_cluster

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


@pytest.fixture(scope="session")
def server_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("server-home"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def http_session(server_process: ServerProcess) -> Session:
    return Session.builder.configs({"url": server_process.url, "token": server_process.token}).create()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer) -> Iterator[Cluster]:
    """The cluster stack (Postgres, Redis, S3, a server and two Celery workers), shared by a test process."""
    with running_cluster(tmp_path_factory.mktemp("cluster"), moto_server) as running:
        yield running


@pytest.fixture(scope="session")
def cluster_session(cluster: Cluster) -> Session:
    return cluster.session()


@pytest.fixture(params=["embedded", "http", "cluster"])
def session(request: pytest.FixtureRequest) -> Session:
    """The same SDK calls against the in-process control plane, a real server over HTTP, and the
    cluster stack (Postgres, Celery over Redis, S3 stages, standalone workers)."""
    return request.getfixturevalue(f"{request.param}_session")  # type: ignore[no-any-return]


@pytest.fixture
def fresh_db(session: Session) -> str:
    """A database of the test's own (with its PUBLIC schema and a stage named DATA), made current."""
    name = f"T_{uuid.uuid4().hex[:10].upper()}"
    session.sql(f"CREATE DATABASE {name}").collect()
    session.sql("CREATE STAGE DATA").collect()
    return name


@pytest.fixture
def embedded_db(embedded_session: Session) -> str:
    """``fresh_db`` on the embedded control plane only: for tests of model types, whose path
    through the control plane is the same as every other model's."""
    name = f"T_{uuid.uuid4().hex[:10].upper()}"
    embedded_session.sql(f"CREATE DATABASE {name}").collect()
    embedded_session.sql("CREATE STAGE DATA").collect()
    return name


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", MotoServer.access_key)
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", MotoServer.secret_key)
    server = MotoServer()
    yield server
    server.stop()
