"""The Airflow tests' world: a real `runbatch server` started with the MAIN environment's Python
(Airflow lives in .venv-airflow, the server cannot), seeded by tests/airflow/seed.py, and real
Airflow task-instance contexts.

RUNBATCH_MAIN_PYTHON names that Python (scripts/test sets it); by default `python` on PATH.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

HERE = Path(__file__).resolve().parent


def main_python() -> str:
    python = os.environ.get("RUNBATCH_MAIN_PYTHON") or shutil.which("python3") or shutil.which("python")
    if not python:
        raise RuntimeError(
            "Set RUNBATCH_MAIN_PYTHON to the Python of the environment runbatch[all] is installed in."
        )
    return python


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    database: str
    proc: subprocess.Popen[bytes]
    log: Path


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("runbatch-home")
    port = _free_port()
    log = home / "server.log"
    env = dict(os.environ, RUNBATCH_HOME=str(home), RUNBATCH_LOG_LEVEL="WARNING")
    env.pop("VIRTUAL_ENV", None)
    with open(log, "a") as out:
        proc = subprocess.Popen(
            [main_python(), "-m", "runbatch.cli", "server", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"runbatch server exited:\n{log.read_text()[-4000:]}")
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"runbatch server did not start:\n{log.read_text()[-4000:]}")
            time.sleep(0.2)
        token = (home / "token").read_text().strip()
        database = f"AF_{uuid.uuid4().hex[:8].upper()}"
        seed = subprocess.run(
            [main_python(), str(HERE / "seed.py"), url, token, database],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if seed.returncode != 0:
            raise RuntimeError(f"seeding the server failed:\n{seed.stdout}{seed.stderr}")
        yield Server(url, token, database, proc, log)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(autouse=True)
def runbatch_connection(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """runbatch_default as Airflow reads connections from the environment (a URI: host, port, token)."""
    host_port = server.url.split("://", 1)[1]
    monkeypatch.setenv("AIRFLOW_CONN_RUNBATCH_DEFAULT", f"runbatch://:{server.token}@{host_port}")
    for name in ("RUNBATCH_API_URL", "RUNBATCH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
