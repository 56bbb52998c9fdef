"""A real Docker engine (scripts/docker-engine starts one) and the CPU runtime image, built once per run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.services import Cluster, MotoServer, running_cluster


@pytest.fixture(scope="session")
def docker_client() -> Any:
    import docker

    client = docker.from_env(timeout=600)
    client.ping()  # no engine is a failure here, not a skip: scripts/test starts one
    return client


@pytest.fixture(scope="session")
def images(docker_client: Any) -> Any:
    from worker.images import ImageBuilder

    # The default lock folder is shared by xdist's processes and `runbatch images build`, so an
    # image is built by one of them while the others wait for it.
    return ImageBuilder(docker_client)


@pytest.fixture(scope="session")
def cpu_image(images: Any) -> str:
    return str(images.runtime_image("cpu"))


@pytest.fixture(scope="session")
def docker_cluster(
    tmp_path_factory: pytest.TempPathFactory, moto_server: MotoServer, cpu_image: str
) -> Iterator[Cluster]:
    env = {"RUNBATCH_EXECUTOR": "docker", "RUNBATCH_DOCKER_CPU_IMAGE": cpu_image, "RUNBATCH_SLOTS": "2"}
    with running_cluster(
        tmp_path_factory.mktemp("docker-cluster"), moto_server, workers=1, worker_env=env
    ) as c:
        yield c
