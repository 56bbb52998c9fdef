"""DockerExecutor against a real engine: names, labels, limits, logs, exit codes, OOM, redelivery, orphans."""

from __future__ import annotations

import base64
import io
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worker.executors.base import LaunchRefused, LaunchSpec
from worker.executors.docker import DockerExecutor, GpuInventory, container_name, resource_limits

# The first test of a run may wait for the runtime image to be built (a few minutes on a new machine).
pytestmark = pytest.mark.timeout(900)

# A stand-in runtime: prints, optionally holds memory, then exits with the code it is given.
_SCRIPT = (
    "import os, sys, time\n"
    "print('started', flush=True)\n"
    "hog = bytearray(int(os.environ.get('HOG_MB', '0')) * 1024 * 1024)\n"
    "hog[::4096] = b'x' * len(hog[::4096])\n"
    "for i in range(int(os.environ.get('TICKS', '0'))):\n"
    "    print('tick', i + 1, flush=True); time.sleep(0.5)\n"
    "sys.exit(int(os.environ.get('EXIT_CODE', '0')))\n"
)


@pytest.fixture(scope="module")
def stand_in_image(docker_client: Any, images: Any) -> str:
    dockerfile = (
        f"FROM {images.base_image()}\n"
        "RUN useradd --uid 10001 runbatch\n"
        f"RUN echo {base64.b64encode(_SCRIPT.encode()).decode()} | base64 -d > /runtime.py\n"
        "USER runbatch\n"
        'ENTRYPOINT ["python3", "/runtime.py"]\n'
    )
    image, _ = docker_client.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag="runbatch-test-stand-in:1", rm=True
    )
    return "runbatch-test-stand-in:1"


@pytest.fixture
def executor(images: Any, stand_in_image: str, tmp_path: Path) -> Iterator[DockerExecutor]:
    executor = DockerExecutor(
        images,
        worker_name=f"{socket.gethostname()}:{os.getpid()}:test{tmp_path.name[-4:]}",
        host=socket.gethostname(),
        cache_dir=tmp_path / "cache",
        cpu_image=stand_in_image,
        gpus=["0", "1", "2"],
    )
    yield executor
    executor.close()
    for container in executor.client.containers.list(
        all=True, filters={"label": f"org.runbatch.worker={executor.worker_name}"}
    ):
        container.remove(force=True)


def _spec(job: str, **kwargs: Any) -> LaunchSpec:
    env = kwargs.pop("env", {})
    kwargs.setdefault("job_id", f"{job.lower()}-id")
    return LaunchSpec(
        job_name=job, shard_index=kwargs.pop("shard", 1), attempt=kwargs.pop("attempt", 2), env=env, **kwargs
    )


def test_names_labels_and_limits_are_docker_s(executor: DockerExecutor, docker_client: Any) -> None:
    handle = executor.launch(
        _spec("BATCH_JOB_A", env={"TICKS": "60"}, cpu_requests="500m", memory_requests="256Mi")
    )
    container = docker_client.containers.get("runbatch-batch_job_a-1-2")
    host_config = container.attrs["HostConfig"]
    assert (host_config["NanoCpus"], host_config["Memory"], host_config["MemorySwap"]) == (
        500_000_000,
        256 * 1024**2,
        256 * 1024**2,
    )
    assert host_config["NetworkMode"] == "host"
    assert f"{executor.cache_dir}:/var/cache/runbatch:rw" in host_config["Binds"]
    labels = {k: v for k, v in container.labels.items() if k.startswith("org.runbatch.")}
    assert labels == {
        "org.runbatch.job": "BATCH_JOB_A",
        "org.runbatch.job_id": "batch_job_a-id",
        "org.runbatch.shard": "1",
        "org.runbatch.attempt": "2",
        "org.runbatch.host": socket.gethostname(),
        "org.runbatch.worker": executor.worker_name,
    }
    env = dict(e.split("=", 1) for e in container.attrs["Config"]["Env"])
    assert (env["OMP_NUM_THREADS"], env["RUNBATCH_CACHE_DIR"]) == ("1", "/var/cache/runbatch")
    # A redelivered launch of the same attempt finds the running container instead of starting another.
    again = executor.launch(
        _spec("BATCH_JOB_A", env={"TICKS": "60"}, cpu_requests="500m", memory_requests="256Mi")
    )
    assert again.container.id == handle.container.id
    assert (
        len(docker_client.containers.list(all=True, filters={"label": "org.runbatch.job=BATCH_JOB_A"})) == 1
    )
    handle.kill()
    assert handle.wait() == 137
    assert docker_client.containers.list(all=True, filters={"label": "org.runbatch.job=BATCH_JOB_A"}) == []


def test_output_lines_and_exit_code(executor: DockerExecutor) -> None:
    handle = executor.launch(_spec("JOB_B", env={"TICKS": "2", "EXIT_CODE": "3"}))
    assert list(handle.lines()) == ["started", "tick 1", "tick 2"]
    assert handle.wait() == 3
    assert handle.exit_message(3) is None


def test_out_of_memory_names_memory_requests(executor: DockerExecutor) -> None:
    handle = executor.launch(_spec("JOB_C", env={"HOG_MB": "400"}, memory_requests="64Mi"))
    list(handle.lines())
    code = handle.wait()
    assert code == 137
    assert handle.exit_message(code) == (
        "The runtime ran out of memory: Docker killed its container at the memory limit of 64Mi "
        "(JobSpec.memory_requests), exit code 137. Raise memory_requests or lower max_batch_rows.",
        False,
    )


def test_orphans_of_dead_workers_are_removed(
    executor: DockerExecutor, images: Any, docker_client: Any, stand_in_image: str, tmp_path: Path
) -> None:
    host = socket.gethostname()
    # A live sibling worker (it holds its lock), and a dead one (its lock file is left, unheld).
    sibling = DockerExecutor(images, worker_name=f"{host}:1:alive1", host=host, cache_dir=executor.cache_dir)
    (executor.cache_dir.parent / "workers" / f"{host}_1_dead01.lock").write_text("")
    owners = (f"{host}:1:dead01", f"{host}:1:alive1", f"{host}:1:unknown")
    for owner in owners:
        docker_client.containers.run(
            stand_in_image,
            name=container_name(f"ORPHAN_{owner.rsplit(':', 1)[1]}", 0, 1),
            labels={"org.runbatch.host": host, "org.runbatch.worker": owner, "org.runbatch.job": "ORPHANS"},
            environment={"TICKS": "60"},
            detach=True,
        )
    try:
        # Only the dead worker's: a worker with no lock file here is another volume's, not ours to judge.
        assert executor.remove_orphans() == ["runbatch-orphan_dead01-0-1"]
        left = docker_client.containers.list(all=True, filters={"label": "org.runbatch.job=ORPHANS"})
        assert sorted(c.name for c in left) == ["runbatch-orphan_alive1-0-1", "runbatch-orphan_unknown-0-1"]
        sibling.close()  # a worker that signs off releases its lock and removes its file
        assert not (executor.cache_dir.parent / "workers" / f"{host}_1_alive1.lock").exists()
    finally:
        for container in docker_client.containers.list(
            all=True, filters={"label": "org.runbatch.job=ORPHANS"}
        ):
            container.remove(force=True)


def test_another_job_of_the_same_name_gets_its_own_container(
    executor: DockerExecutor, docker_client: Any
) -> None:
    first = executor.launch(_spec("SAME", env={"TICKS": "60"}, job_id="aaaaaaaa-1111"))
    second = executor.launch(_spec("SAME", env={"TICKS": "60"}, job_id="bbbbbbbb-2222"))
    assert (first.container.name, second.container.name) == (
        "runbatch-same-1-2",
        "runbatch-same-1-2-bbbbbbbb",
    )
    for handle in (first, second):
        handle.kill()
        handle.wait()


def test_gpu_requests_take_devices_from_the_inventory() -> None:
    gpus = GpuInventory(["0", "1", "2"])
    taken = gpus.take("2")
    assert taken == ["0", "1"] and gpus.free == ["2"]
    (request,) = GpuInventory.device_requests(taken)
    assert (request["DeviceIDs"], request["Capabilities"], request["Driver"]) == (["0", "1"], [["gpu"]], "")
    with pytest.raises(RuntimeError, match=r"^No 2 GPU\(s\) became free in 0.1s\.$"):
        gpus.take("2", timeout=0.1)  # waits for other shards' GPUs, up to the timeout
    with pytest.raises(LaunchRefused, match=r"^gpu_requests=4 but this worker has 3 GPU\(s\) in all"):
        gpus.take("4")
    gpus.give_back(taken)
    assert sorted(gpus.free) == ["0", "1", "2"]
    assert gpus.take(None) == [] and GpuInventory.device_requests([]) == []


def test_resource_strings() -> None:
    assert resource_limits("2", "8Gi") == {
        "nano_cpus": 2_000_000_000,
        "mem_limit": 8 * 1024**3,
        "memswap_limit": 8 * 1024**3,
    }
    assert resource_limits(None, None) == {}
    assert container_name('DB.SCH.JOB "x"', 3, 1) == "runbatch-db.sch.job__x_-3-1"


def test_a_repository_path_left_unresolved_is_refused_with_the_fix(executor: DockerExecutor) -> None:
    with pytest.raises(LaunchRefused) as refused:
        executor.run_container(
            name="runbatch-svc-gone",
            image="/ml/public/images/hello:1.0",
            command=None,
            args=None,
            env={},
            labels={},
            volumes={},
            cpu=None,
            memory=None,
            gpu=None,
        )
    assert str(refused.value) == (
        "Image '/ml/public/images/hello:1.0' names an image repository that no longer exists (dropped after the "
        "service was created) or a control plane without RUNBATCH_REGISTRY_HOST: create the repository again, "
        "push the image to it, then resume or re-create the service."
    )
