"""Image repositories on a real registry (Debian's docker-registry in a container, scripts/registry):
`docker login` with a runbatch token, push a user image, run a job service from it, refusals."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import httpx
import pytest
from pydantic import SecretStr

from runbatch.errors import NotFoundError
from runbatch.snowpark import Session
from tests.services import Cluster, MotoServer, free_port, running_cluster
from worker.images import ImageBuildError

pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]
POOL = "SYSTEM_COMPUTE_POOL_CPU"
BOB_PASSWORD = "bob-Pa55word-47"
JOB = """
spec:
  containers:
  - name: main
    image: {image}
    command: [sh, -c, 'echo "$GREETING"; cat /etc/debian_version >/dev/null']
"""


@dataclass
class Stack:
    cluster: Cluster
    session: Session
    registry: str  # host:port
    database: str
    bob: str  # a login token of a user with the PUBLIC role only
    docker_home: Path

    def docker(
        self, *args: str, config: Path | None = None, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """The docker CLI as a user runs it, with its own credentials folder."""
        env = dict(os.environ, DOCKER_CONFIG=str(config or self.docker_home))
        return subprocess.run(
            ["docker", *args], input=stdin, env=env, capture_output=True, text=True, timeout=300, check=False
        )


@pytest.fixture(scope="module")
def base_image() -> str:
    """The Debian + Python base of the runtime images (built once per machine)."""
    from worker.images import ImageBuilder

    return str(ImageBuilder(docker.from_env(timeout=600)).base_image())


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, base_image: str
) -> Iterator[Stack]:
    port = free_port()
    registry = f"127.0.0.1:{port}"
    name = f"runbatch-registry-test-{uuid.uuid4().hex[:8]}"
    folder = tmp_path_factory.mktemp("image-repos")
    env = {"RUNBATCH_EXECUTOR": "docker", "RUNBATCH_SLOTS": "2"}
    with running_cluster(
        folder, moto_server, workers=1, worker_env=env, server_env={"RUNBATCH_REGISTRY_HOST": registry}
    ) as cluster:
        assert cluster.server is not None
        started = subprocess.run(
            [
                str(ROOT / "scripts" / "registry"),
                "start",
                "--home",
                str(cluster.server.home),
                "--realm",
                f"{cluster.server.url}/api/v1/registry/token",
                "--port",
                str(port),
                "--name",
                name,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert started.returncode == 0, started.stderr
        assert started.stdout.strip() == registry
        session = cluster.session()
        try:
            database = f"IMG_{int(time.time() * 1000) % 10**9}"
            session.sql(f"CREATE DATABASE {database}").collect()
            session.sql(f"CREATE USER bob PASSWORD='{BOB_PASSWORD}'").collect()
            bob = httpx.post(
                f"{cluster.server.url}/api/v1/login", json={"username": "bob", "password": BOB_PASSWORD}
            ).json()["token"]
            docker_home = folder / "docker-config"
            docker_home.mkdir()
            yield Stack(cluster, session, registry, database, bob, docker_home)
        finally:
            session.close()
            subprocess.run([str(ROOT / "scripts" / "registry"), "stop", "--name", name], check=False)
            subprocess.run(["docker", "volume", "rm", "-f", f"{name}-data"], capture_output=True, check=False)
            # What the worker pulled from this run's registry.
            client = docker.from_env(timeout=60)
            for image in client.images.list():
                for tag in image.tags:
                    if tag.startswith(registry + "/"):
                        client.images.remove(tag, force=True)


def _rows(session: Session, sql: str) -> list[dict[str, Any]]:
    return [r.as_dict() for r in session.sql(sql).collect()]


def test_push_a_user_image_and_run_a_job_service_from_it(stack: Stack, base_image: str) -> None:
    db = stack.database
    session = stack.session
    assert _rows(session, "CREATE IMAGE REPOSITORY images COMMENT = 'user images'") == [
        {"status": "Image Repository IMAGES successfully created."}
    ]
    assert _rows(session, "CREATE IMAGE REPOSITORY IF NOT EXISTS images") == [
        {"status": "IMAGES already exists, statement succeeded."}
    ]
    listed = _rows(session, "SHOW IMAGE REPOSITORIES IN SCHEMA PUBLIC")
    url = f"{stack.registry}/{db.lower()}/public/images"
    assert [{k: v for k, v in r.items() if k != "created_on"} for r in listed] == [
        {
            "name": "IMAGES",
            "database_name": db,
            "schema_name": "PUBLIC",
            "repository_url": url,
            "owner": "ACCOUNTADMIN",
            "owner_role_type": "ROLE",
            "comment": "user images",
            "privatelink_repository_url": "",
            "encryption": "SNOWFLAKE_SSE",
        }
    ]
    assert stack.cluster.server is not None
    login = stack.docker(
        "login", stack.registry, "-u", "anyone", "--password-stdin", stdin=stack.cluster.server.token
    )
    assert login.returncode == 0, login.stderr
    assert "Login Succeeded" in login.stdout

    client = docker.from_env(timeout=300)
    dockerfile = f"FROM {base_image}\nENV GREETING='hello from the registry'\n"
    client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=f"{url}/hello:1.0", rm=True)
    pushed = stack.docker("push", f"{url}/hello:1.0")
    assert pushed.returncode == 0, pushed.stderr
    client.images.remove(f"{url}/hello:1.0")  # the worker must pull it

    images = _rows(session, "SHOW IMAGES IN IMAGE REPOSITORY images")
    assert [(i["image_name"], i["tags"], i["image_path"]) for i in images] == [
        ("hello", "1.0", f"/{db.lower()}/public/images/hello:1.0")
    ]
    assert images[0]["digest"].startswith("sha256:") and images[0]["created_on"]

    spec = JOB.format(image=f"/{db}/PUBLIC/IMAGES/hello:1.0")
    done = _rows(
        session, f"EXECUTE JOB SERVICE IN COMPUTE POOL {POOL} NAME = hello FROM SPECIFICATION $${spec}$$"
    )
    assert done == [{"status": "Job HELLO completed with status: DONE."}]
    logs = session.sql("SELECT SYSTEM$GET_SERVICE_LOGS('hello', 0, 'main')").collect()[0][0]
    assert logs == "hello from the registry"
    status = json.loads(session.sql("SELECT SYSTEM$GET_SERVICE_STATUS('hello')").collect()[0][0])
    assert [(s["image"], s["status"]) for s in status] == [(f"/{db}/PUBLIC/IMAGES/hello:1.0", "DONE")]

    # A long-running service pulls it too (removed again from the engine first).
    client.images.remove(f"{url}/hello:1.0")
    service = JOB.replace("cat /etc/debian_version >/dev/null", "sleep 300").format(
        image=f"/{db}/PUBLIC/IMAGES/hello:1.0"
    )
    created = _rows(
        session, f"CREATE SERVICE greeter IN COMPUTE POOL {POOL} FROM SPECIFICATION $${service}$$"
    )
    assert created == [{"status": "Service GREETER successfully created."}]
    try:
        deadline = time.monotonic() + 90
        logs = ""
        while logs != "hello from the registry" and time.monotonic() < deadline:
            time.sleep(0.5)
            logs = session.sql("SELECT SYSTEM$GET_SERVICE_LOGS('greeter', 0, 'main')").collect()[0][0]
        assert logs == "hello from the registry"
    finally:
        session.sql("DROP SERVICE greeter").collect()


def test_pushes_and_pulls_without_a_privilege_are_refused(
    stack: Stack, base_image: str, tmp_path: Path
) -> None:
    url = f"{stack.registry}/{stack.database.lower()}/public/images"
    anonymous = tmp_path / "anonymous"
    anonymous.mkdir()
    pulled = stack.docker("pull", f"{url}/hello:1.0", config=anonymous)
    assert pulled.returncode != 0
    assert "unauthorized" in pulled.stderr or "authentication required" in pulled.stderr, pulled.stderr

    bad = stack.docker(
        "login", stack.registry, "-u", "x", "--password-stdin", config=anonymous, stdin="rbt_not-a-token"
    )
    assert bad.returncode != 0

    bob = tmp_path / "bob"
    bob.mkdir()
    login = stack.docker(
        "login", stack.registry, "-u", "bob", "--password-stdin", config=bob, stdin=stack.bob
    )
    assert login.returncode == 0, login.stderr  # a valid user; what it may do is decided per repository
    client = docker.from_env(timeout=300)
    image = client.images.get(base_image)
    image.tag(f"{url}/bobs", "1")
    try:
        refused = stack.docker("push", f"{url}/bobs:1", config=bob)
        assert refused.returncode != 0
        assert "denied" in refused.stderr or "unauthorized" in refused.stderr, refused.stderr
        not_bobs = stack.docker("pull", f"{url}/hello:1.0", config=bob)
        assert not_bobs.returncode != 0
    finally:
        client.images.remove(f"{url}/bobs:1")

    # No repository, no push: not even ACCOUNTADMIN writes outside one.
    stray = f"{stack.registry}/{stack.database.lower()}/public/nothere/x:1"
    image.tag(stray)
    try:
        refused = stack.docker("push", stray)
        assert refused.returncode != 0
        assert "denied" in refused.stderr or "unauthorized" in refused.stderr, refused.stderr
    finally:
        client.images.remove(stray)

    with pytest.raises(NotFoundError, match=r"image repository .*\.PUBLIC\.NOTHERE does not exist"):
        stack.session.sql(
            f"EXECUTE JOB SERVICE IN COMPUTE POOL {POOL} NAME = stray FROM SPECIFICATION "
            f"$${JOB.format(image=f'/{stack.database}/PUBLIC/NOTHERE/x:1')}$$"
        ).collect()


def test_workers_pull_runtime_images_from_a_repository(stack: Stack, base_image: str, tmp_path: Path) -> None:
    """`runbatch images push` puts an image where workers look for this runbatch's runtime, and a docker
    executor with RUNBATCH_RUNTIME_REPOSITORY pulls it (with a token from the control plane) instead of
    building one. The image pushed is the small Python base standing in for the runtime: pushing the real
    one (2.8 GB, gzipped by the engine) takes minutes on a test machine; the code path is the same."""
    from worker.executors import create_executor
    from worker.executors.base import LaunchRefused, LaunchSpec
    from worker.images import code_digest
    from worker.settings import WorkerSettings

    server = stack.cluster.server
    assert server is not None
    db = stack.database
    assert _rows(stack.session, "CREATE IMAGE REPOSITORY runtime") == [
        {"status": "Image Repository RUNTIME successfully created."}
    ]
    url = f"{stack.registry}/{db.lower()}/public/runtime"
    reference = f"{url}/runbatch-runtime:cpu-{code_digest('cpu')}"
    pushed = subprocess.run(
        [
            sys.executable,
            "-m",
            "runbatch.cli",
            "images",
            "push",
            "cpu",
            "--repository",
            f"/{db}/public/runtime",
        ]
        + ["--image", base_image],
        env=dict(os.environ, RUNBATCH_API_URL=server.url, RUNBATCH_TOKEN=server.token),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert pushed.returncode == 0, pushed.stderr
    assert pushed.stdout.splitlines()[-2:] == [f"Pushing {base_image} as {reference} ...", reference]
    images = _rows(stack.session, "SHOW IMAGES IN IMAGE REPOSITORY runtime")
    assert [(i["image_name"], i["tags"]) for i in images] == [
        ("runbatch-runtime", f"cpu-{code_digest('cpu')}")
    ]

    client = docker.from_env(timeout=300)
    client.images.remove(reference)  # only the tag: the base image keeps the layers
    settings = WorkerSettings(
        executor="docker", runtime_repository=url, api_url=server.url, token=server.token, cache_dir=tmp_path
    )
    executor = create_executor(settings, worker_name="puller", cache_dir=tmp_path, gpus=0)
    try:
        assert executor.runtime_image("cpu") == reference  # type: ignore[attr-defined]
        assert client.images.get(reference).id == client.images.get(base_image).id
        # A shard's launch pulls it too (the stand-in's python exits at once: no runtime protocol).
        client.images.remove(reference)
        handle = executor.launch(LaunchSpec("pulled", 0, 1, env={}, job_id=uuid.uuid4().hex))
        assert handle.container.attrs["Config"]["Image"] == reference  # type: ignore[attr-defined]
        assert handle.wait() == 0
        # Nothing pushed for the GPU: the worker says what to run, and builds nothing.
        with pytest.raises(LaunchRefused) as missing:
            executor.runtime_image("gpu")  # type: ignore[attr-defined]
        assert str(missing.value) == (
            f"Image repository /{db.lower()}/public/runtime has no gpu runtime image of this runbatch "
            f"({url}/runbatch-runtime:gpu-{code_digest('gpu')}). Push it from a host with the runbatch source "
            f"checkout of the same version: runbatch images push gpu --repository /{db.lower()}/public/runtime"
        )
    finally:
        executor.close()

    # A worker whose token may not pull from the repository is told what to grant.
    bobs = create_executor(
        settings.model_copy(update={"token": SecretStr(stack.bob)}),
        worker_name="bobs",
        cache_dir=tmp_path,
        gpus=0,
    )
    try:
        with pytest.raises(LaunchRefused, match=r"does not let worker bobs pull from image repository /"):
            bobs.runtime_image("gpu")  # type: ignore[attr-defined]
    finally:
        bobs.close()

    # A setting that names no repository is refused when the worker starts.
    with pytest.raises(ImageBuildError, match="is not an image repository URL"):
        create_executor(
            settings.model_copy(update={"runtime_repository": f"{stack.registry}/runtime"}),
            worker_name="typo",
            cache_dir=tmp_path,
            gpus=0,
        )


def test_a_repository_created_where_one_was_dropped_starts_empty(stack: Stack, tmp_path: Path) -> None:
    """DROP deletes the images on the real registry: bob re-creating the path cannot reach them."""
    assert stack.cluster.server is not None
    url = f"{stack.registry}/{stack.database.lower()}/public/gone"
    _rows(stack.session, "CREATE IMAGE REPOSITORY gone")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for name, data in (("Dockerfile", b"FROM scratch\nCOPY secret /secret\n"), ("secret", b"admin's\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    context.seek(0)
    client = docker.from_env(timeout=300)
    client.images.build(fileobj=context, custom_context=True, tag=f"{url}/app:1", rm=True)
    try:
        pushed = stack.docker("push", f"{url}/app:1")  # logged in as ACCOUNTADMIN by the first test
        assert pushed.returncode == 0, pushed.stderr
        found = re.search(r"digest: (sha256:[0-9a-f]{64})", pushed.stdout)
        assert found is not None, pushed.stdout
        digest = found.group(1)
    finally:
        client.images.remove(f"{url}/app:1", force=True)
    assert _rows(stack.session, "DROP IMAGE REPOSITORY gone") == [{"status": "GONE successfully dropped."}]

    sql = {"sql": "CREATE IMAGE REPOSITORY gone", "database": stack.database, "schema": "PUBLIC"}
    bob_headers = {"Authorization": f"Bearer {stack.bob}"}
    created = httpx.post(f"{stack.cluster.server.url}/api/v1/sql", json=sql, headers=bob_headers)
    assert created.json()["rows"] == [["Image Repository GONE successfully created."]]
    shown = httpx.post(
        f"{stack.cluster.server.url}/api/v1/sql",
        json={**sql, "sql": "SHOW IMAGES IN IMAGE REPOSITORY gone"},
        headers=bob_headers,
    )
    assert shown.json()["rows"] == []
    bob = tmp_path / "bob"
    bob.mkdir()
    login = stack.docker(
        "login", stack.registry, "-u", "bob", "--password-stdin", config=bob, stdin=stack.bob
    )
    assert login.returncode == 0, login.stderr
    for reference in (f"{url}/app:1", f"{url}/app@{digest}"):
        pulled = stack.docker("pull", reference, config=bob)
        assert pulled.returncode != 0
        assert "not found" in pulled.stderr or "manifest unknown" in pulled.stderr, pulled.stderr
