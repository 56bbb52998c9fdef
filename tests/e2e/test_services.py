"""Job services from SPCS specifications: Celery + a Docker worker + S3 stages + Postgres."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pandas as pd
import pytest

from runbatch.errors import InvalidArgumentError
from runbatch.ml.jobs import delete_job, get_job, list_jobs
from runbatch.snowpark import Session
from tests.services import Cluster, MotoServer, running_cluster

pytestmark = pytest.mark.timeout(900)

POOL = "SYSTEM_COMPUTE_POOL_CPU"

# Reads a file of the stage volume, logs three lines and writes a file back to the stage.
WRITER = """
spec:
  containers:
  - name: main
    image: {image}
    command: [python3, -c]
    args:
    - |
      import os
      text = open("/data/in/words.txt").read().split()
      for word in text:
          print(os.environ["GREETING"], word, flush=True)
      os.makedirs("/data/out", exist_ok=True)
      open("/data/out/upper.txt", "w").write(" ".join(w.upper() for w in text))
    env:
      GREETING: hello
    resources:
      requests: {{memory: 256Mi, cpu: 0.5}}
      limits: {{memory: 512Mi, cpu: 1}}
    volumeMounts:
    - name: data
      mountPath: /data
  volumes:
  - name: data
    source: "@DATA/vol"
"""

FAILING = """
spec:
  containers:
  - name: main
    image: {image}
    command: [python3, -c, "import sys; print('giving up'); sys.exit(3)"]
"""


# Ready 4 s after it starts listening; echoes what reached it (the proxy must not pass the token on).
WEB = """
spec:
  containers:
  - name: web
    image: {image}
    command: [python3, -c]
    args:
    - |
      import http.server, json, os, time
      started = time.time()
      stats = {{"requests": 0, "rows": 0, "largest": 0}}
      class Handler(http.server.BaseHTTPRequestHandler):
          def reply(self, code, body):
              data = json.dumps(body).encode()
              self.send_response(code)
              self.send_header("Content-Type", "application/json")
              self.send_header("Content-Length", str(len(data)))
              self.end_headers()
              self.wfile.write(data)
          def do_GET(self):
              if self.path == "/stats":
                  return self.reply(200, stats)
              if self.path == "/ready":
                  return self.reply(200 if time.time() - started > 4 else 503, {{}})
              self.reply(200, {{"path": self.path, "auth": self.headers.get("Authorization")}})
          def do_POST(self):
              body = self.rfile.read(int(self.headers["Content-Length"])).decode()
              if self.path == "/upper":  # Snowflake's service function protocol, answered in reverse order
                  rows = json.loads(body)["data"]
                  stats["requests"] += 1
                  stats["rows"] += len(rows)
                  stats["largest"] = max(stats["largest"], len(rows))
                  return self.reply(200, {{"data": [[i, word.upper()] for i, word in reversed(rows)]}})
              if self.path == "/broken":
                  return self.reply(200, {{"rows": []}})
              self.reply(201, {{"path": self.path, "body": body, "auth": self.headers.get("Authorization")}})
          def log_message(self, *args):
              pass
      port = int(os.environ.get("RUNBATCH_PORT_8080", "8080"))
      server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
      print("listening", flush=True)
      server.serve_forever()
    readinessProbe: {{port: 8080, path: /ready}}
  endpoints:
  - {{name: api, port: 8080, public: true}}
  - {{name: internal, port: 8080}}
"""


@pytest.fixture(scope="module")
def image() -> str:
    """The Debian + Python base of the runtime images: any image with a Python will do, and this one is
    built once per machine (the runtime image is rebuilt whenever runbatch's source changes)."""
    from worker.images import ImageBuilder

    return ImageBuilder(docker.from_env(timeout=600)).base_image()


@pytest.fixture(scope="module")
def docker_cluster(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, image: str
) -> Iterator[Cluster]:
    env = {"RUNBATCH_EXECUTOR": "docker", "RUNBATCH_SLOTS": "2"}
    with running_cluster(tmp_path_factory.mktemp("spcs"), moto_server, workers=1, worker_env=env) as c:
        yield c


@pytest.fixture(scope="module")
def session(docker_cluster: Cluster) -> Iterator[Session]:
    session = docker_cluster.session()
    database = f"SVC_{int(time.time() * 1000) % 10**9}"
    session.sql(f"CREATE DATABASE {database}").collect()
    session.sql("CREATE STAGE DATA").collect()
    yield session
    # A failed test may leave a service running; its containers go with the test run.
    for container in _service_containers(database.lower() + "."):
        container.remove(force=True)


def _one(session: Session, sql: str) -> Any:
    rows = session.sql(sql).collect()
    assert len(rows) == 1
    return rows[0][0]


def _service_containers(name: str) -> list[Any]:
    """Containers of services whose qualified name contains ``name`` (``db.public.svc``, lower case)."""
    client = docker.from_env()
    return [
        c for c in client.containers.list(all=True) if c.name.startswith("runbatch-svc-") and name in c.name
    ]


def test_a_job_service_reads_and_writes_its_stage_volume(
    session: Session, image: str, tmp_path: Path
) -> None:
    (tmp_path / "words.txt").write_text("alpha beta gamma")
    (tmp_path / "job.yaml").write_text(WRITER.format(image=image))
    session.file.put(str(tmp_path / "words.txt"), "@DATA/vol/in")
    session.file.put(str(tmp_path / "job.yaml"), "@DATA/specs")

    result = _one(
        session,
        f"EXECUTE JOB SERVICE IN COMPUTE POOL {POOL} NAME = writer FROM @DATA/specs SPECIFICATION_FILE = 'job.yaml'",
    )

    assert result == "Job WRITER completed with status: DONE."
    status = json.loads(_one(session, "SELECT SYSTEM$GET_SERVICE_STATUS('writer')"))
    assert [(s["containerName"], s["status"], s["exitCode"], s["image"]) for s in status] == [
        ("main", "DONE", 0, image)
    ]
    logs = _one(session, "SELECT SYSTEM$GET_SERVICE_LOGS('writer', 0, 'main')")
    assert logs.splitlines() == ["hello alpha", "hello beta", "hello gamma"]
    session.file.get("@DATA/vol/out/upper.txt", str(tmp_path / "back"))
    assert (tmp_path / "back" / "upper.txt").read_text() == "ALPHA BETA GAMMA"
    listed = list_jobs(session=session)
    assert listed.loc[listed.name == "WRITER", ["status", "compute_pool"]].values.tolist() == [["DONE", POOL]]
    assert _service_containers("writer") == []  # removed once ended

    assert _one(session, "DROP SERVICE writer") == "WRITER successfully dropped."
    assert "WRITER" not in list_jobs(session=session).name.tolist()
    with pytest.raises(InvalidArgumentError, match="does not exist"):
        session.sql("SELECT SYSTEM$GET_SERVICE_STATUS('writer')").collect()


def test_a_failing_container_fails_the_job_with_its_exit_code(session: Session, image: str) -> None:
    spec = FAILING.format(image=image)

    result = _one(
        session, f"EXECUTE JOB SERVICE IN COMPUTE POOL {POOL} NAME = quitter FROM SPECIFICATION $${spec}$$"
    )

    assert result == "Job QUITTER completed with status: FAILED. Container main exited with code 3."
    (status,) = json.loads(_one(session, "SELECT SYSTEM$GET_SERVICE_STATUS('quitter')"))
    assert (status["status"], status["exitCode"]) == ("FAILED", 3)
    assert _one(session, "SELECT SYSTEM$GET_SERVICE_LOGS('quitter', 0, 'main')") == "giving up"


def test_bad_specifications_are_refused_before_anything_runs(session: Session, image: str) -> None:
    no_image = "spec:\n  containers:\n  - name: main\n"
    with pytest.raises(
        InvalidArgumentError, match=r"spec\.containers\[0\]\.image: Field required \(add it\)"
    ):
        session.sql(
            f"EXECUTE JOB SERVICE IN COMPUTE POOL {POOL} NAME = bad FROM SPECIFICATION $${no_image}$$"
        ).collect()
    unknown = FAILING.format(image="no-such-image:1")
    async_result = _one(
        session,
        f"EXECUTE JOB SERVICE IN COMPUTE POOL {POOL} NAME = missing ASYNC = TRUE FROM SPECIFICATION $${unknown}$$",
    )
    assert async_result == "Job MISSING submitted."
    deadline = time.monotonic() + 60
    while (status := json.loads(_one(session, "SELECT SYSTEM$GET_SERVICE_STATUS('missing')"))[0])[
        "status"
    ] != "FAILED":
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert "Image 'no-such-image:1' is not on the Docker engine" in status["message"]


def _status(session: Session, name: str) -> dict[str, Any]:
    (status,) = json.loads(_one(session, f"SELECT SYSTEM$GET_SERVICE_STATUS('{name}')"))
    return dict(status)


def _service_status(session: Session, name: str) -> str:
    rows = session.sql(f"SHOW SERVICES LIKE '{name}'").collect()
    return str(rows[0]["status"]) if rows else "GONE"


def _until(session: Session, name: str, wanted: str, timeout: float = 90) -> list[str]:
    """Poll SHOW SERVICES until the service is ``wanted``; returns the statuses seen on the way."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (current := _service_status(session, name)) != wanted:
        if not seen or seen[-1] != current:
            seen.append(current)
        assert time.monotonic() < deadline, (seen, _status(session, name))
        time.sleep(0.3)
    return seen


def _running(session: Session, name: str) -> list[Any]:
    database = str(session.get_current_database()).strip('"').lower()
    return [c for c in _service_containers(f"{database}.public.{name}-") if c.status == "running"]


def test_a_service_becomes_ready_is_proxied_restarted_suspended_and_dropped(
    docker_cluster: Cluster, session: Session, image: str
) -> None:
    import httpx

    server = docker_cluster.server
    assert server is not None
    spec = WEB.format(image=image)
    created = _one(
        session,
        f"CREATE SERVICE web IN COMPUTE POOL {POOL} FROM SPECIFICATION $${spec}$$ MIN_INSTANCES = 1 MAX_INSTANCES = 1",
    )
    assert created == "Service WEB successfully created."

    # READY only once the readiness probe answers, 4 s after the server listens.
    seen = _until(session, "WEB", "READY")
    assert "RUNNING" in seen, seen
    assert "listening" in _one(session, "SELECT SYSTEM$GET_SERVICE_LOGS('web', 0, 'web')").splitlines()
    endpoints = session.sql("SHOW ENDPOINTS IN SERVICE web").collect()
    db = str(session.get_current_database()).strip('"')
    url = f"{server.url}/api/v1/services/{db}/PUBLIC/WEB/endpoints/api/"
    assert [(e["name"], e["port"], e["is_public"], e["ingress_url"]) for e in endpoints] == [
        ("api", 8080, True, url),
        ("internal", 8080, False, ""),
    ]

    answer = httpx.post(url + "echo?x=1", content=b"ping", headers=server.auth, timeout=30)
    assert (answer.status_code, answer.json()) == (201, {"path": "/echo?x=1", "body": "ping", "auth": None})
    assert httpx.get(url + "hello", timeout=30).status_code == 401  # no token: refused by the control plane
    internal = httpx.get(url.removesuffix("api/") + "internal/hello", headers=server.auth, timeout=30)
    assert internal.status_code == 403

    # A service function: 10k rows in batches of at most MAX_BATCH_ROWS, values and order exact.
    words = [f"word{i}" for i in range(10_000)]
    session.create_dataframe(pd.DataFrame({"ID": range(10_000), "WORD": words})).write.save_as_table("WORDS")
    _one(
        session,
        "CREATE FUNCTION upper_it (w VARCHAR) RETURNS VARCHAR SERVICE = web ENDPOINT = internal "
        "MAX_BATCH_ROWS = 500 AS '/upper'",
    )
    got = session.sql("SELECT ID, UPPER_IT(WORD) AS U FROM WORDS ORDER BY ID").to_pandas()
    assert got.U.tolist() == [w.upper() for w in words]
    stats = httpx.get(url + "stats", headers=server.auth, timeout=30).json()
    assert stats["rows"] == 10_000 and stats["largest"] <= 500
    assert stats["requests"] >= 20
    _one(
        session,
        "CREATE FUNCTION broken (w VARCHAR) RETURNS VARCHAR SERVICE = web ENDPOINT = api AS '/broken'",
    )
    with pytest.raises(InvalidArgumentError, match=r"must answer JSON \{\"data\": \[\[row_index, value\]"):
        session.sql("SELECT BROKEN(WORD) FROM WORDS").collect()

    # A killed container is started again, and the service is READY again after its probe passes.
    (container,) = _running(session, "web")
    container.kill()
    _until(session, "WEB", "RUNNING", timeout=30)
    _until(session, "WEB", "READY")
    assert _status(session, "web")["restartCount"] == 1
    assert httpx.get(url + "again", headers=server.auth, timeout=30).json()["path"] == "/again"

    assert _one(session, "ALTER SERVICE web SUSPEND") == "Statement executed successfully."
    _until(session, "WEB", "SUSPENDED", timeout=60)
    assert _running(session, "web") == []
    assert httpx.get(url + "x", headers=server.auth, timeout=30).status_code == 503
    _one(session, "ALTER SERVICE web RESUME")
    _until(session, "WEB", "READY")

    assert _one(session, "DROP SERVICE web") == "WEB successfully dropped."
    _until(session, "WEB", "GONE", timeout=60)
    deadline = time.monotonic() + 30
    while _running(session, "web"):
        assert time.monotonic() < deadline
        time.sleep(0.5)


SLEEPER = """
spec:
  containers:
  - name: main
    image: {image}
    command: [python3, -c, "import time; print('started', flush=True); time.sleep(600)"]
"""


def test_cancelling_a_job_service_stops_its_container_and_keeps_its_logs(
    session: Session, image: str
) -> None:
    spec = SLEEPER.format(image=image)
    _one(
        session,
        f"EXECUTE JOB SERVICE IN COMPUTE POOL {POOL} NAME = sleeper ASYNC = TRUE FROM SPECIFICATION $${spec}$$",
    )
    job = get_job("sleeper", session=session)
    deadline = time.monotonic() + 60
    while job.get_logs() != "started":
        assert time.monotonic() < deadline, job.status
        time.sleep(0.3)

    job.cancel()

    assert job.wait(timeout=30) == "CANCELLED"
    database = str(session.get_current_database()).strip('"').lower()
    assert _service_containers(f"{database}.public.sleeper-") == []  # stopped and removed
    assert job.get_logs() == "started"
    (status,) = json.loads(_one(session, "SELECT SYSTEM$GET_SERVICE_STATUS('sleeper')"))
    assert (status["status"], status["message"]) == ("CANCELLED", "Cancelled: its containers were stopped.")
    delete_job(job)
    assert _service_status(session, "SLEEPER") == "GONE"
