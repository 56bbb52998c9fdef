"""The process executor with real runtimes: forked from the fork server, or started cold.

The runtimes here have no control plane to talk to: one that cannot read its settings exits 1
at once, and one pointed at a socket that never answers blocks until it is killed.
"""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from worker.executors.base import LaunchSpec
from worker.executors.process import ForkedHandle, ProcessExecutor, ProcessHandle, frameworks


@pytest.fixture(scope="module")
def executor() -> Iterator[ProcessExecutor]:
    ex = ProcessExecutor(preload="")
    yield ex
    ex.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]


def _spec(env: dict[str, str]) -> LaunchSpec:
    return LaunchSpec(job_name="J", shard_index=0, attempt=1, env=env, threads=1)


def _shard_env(port: int) -> dict[str, str]:
    return {
        "RUNBATCH_API_URL": f"http://127.0.0.1:{port}/api/v1",
        "RUNBATCH_SHARD_ID": str(uuid.uuid4()),
        "RUNBATCH_SHARD_TOKEN": "t",
    }


def _becomes_session_leader(pid: int) -> bool:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if os.getsid(pid) == pid:
                return True
        except ProcessLookupError:
            pass
        time.sleep(0.05)
    return False


def test_a_forked_runtime_reports_its_output_and_exit_code(executor: ProcessExecutor) -> None:
    handle = executor.launch(_spec({"RUNBATCH_API_URL": "http://127.0.0.1:9/api/v1"}))
    assert isinstance(handle, ForkedHandle)
    output = "\n".join(handle.lines())
    assert handle.wait() == 1
    assert handle.wait() == 1  # asked again: the same answer, not a hang
    # The settings error names the missing fields: the shard's environment reached the runtime.
    assert "shard_id" in output and "shard_token" in output
    handle.kill()  # after the exit: a no-op, never a signal to a recycled pid


def test_a_forked_runtime_sees_the_worker_s_environment_at_launch(
    executor: ProcessExecutor, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Set after the fork server started: a runtime must see the worker's environment as it is now.
    monkeypatch.setenv("RUNBATCH_RUNTIME_LOG_LEVEL", "not-a-level")
    handle = executor.launch(_spec(_shard_env(9)))
    output = "\n".join(handle.lines())
    assert handle.wait() == 1
    assert "Unknown level: 'NOT-A-LEVEL'" in output


def test_a_killed_runtime_takes_its_session_and_reports_sigkill(
    executor: ProcessExecutor, silent_port: int
) -> None:
    handle = executor.launch(_spec(_shard_env(silent_port)))
    assert isinstance(handle, ForkedHandle)
    assert _becomes_session_leader(handle.pid)  # so killpg reaches its children
    handle.kill()
    assert handle.wait() == -signal.SIGKILL
    assert list(handle.lines()) == []


def test_runtimes_die_with_their_fork_server_and_a_new_one_takes_over(silent_port: int) -> None:
    executor = ProcessExecutor(preload="")
    try:
        handle = executor.launch(_spec(_shard_env(silent_port)))
        assert isinstance(handle, ForkedHandle)
        server = _parent_of(handle.pid)
        os.kill(server, signal.SIGKILL)
        assert handle.wait() == -signal.SIGKILL
        again = executor.launch(_spec({"RUNBATCH_API_URL": "http://127.0.0.1:9/api/v1"}))
        assert isinstance(again, ForkedHandle)
        assert _parent_of(again.pid) != server
        list(again.lines())
        assert again.wait() == 1
    finally:
        executor.close()


def test_without_the_fork_server_runtimes_start_cold() -> None:
    executor = ProcessExecutor(fork=False)
    handle = executor.launch(_spec({"RUNBATCH_API_URL": "http://127.0.0.1:9/api/v1"}))
    assert isinstance(handle, ProcessHandle)
    assert "shard_id" in "\n".join(handle.lines())
    assert handle.wait() == 1
    executor.close()


def _parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def test_frameworks_named_by_requirements() -> None:
    requirements = (
        "torch==2.13.0",
        "transformers>=4.45,<5",
        "conda-forge::scikit-learn=1.5",
        "numpy",
        "Sentence_Transformers",
        "torch",
        "not a requirement ^",
    )
    assert frameworks(requirements) == ["torch", "transformers", "sklearn", "sentence_transformers"]


def test_the_fork_server_imports_a_model_s_framework_before_forking(executor: ProcessExecutor) -> None:
    spec = LaunchSpec(
        job_name="J",
        shard_index=0,
        attempt=1,
        env={"RUNBATCH_API_URL": "http://127.0.0.1:9/api/v1"},
        pip_requirements=("lightgbm==4.6.0",),
    )
    handle = executor.launch(spec)
    assert isinstance(handle, ForkedHandle)
    server = _parent_of(handle.pid)
    list(handle.lines())
    assert handle.wait() == 1
    with open(f"/proc/{server}/maps") as maps:
        assert "lib_lightgbm" in maps.read()  # loaded once in the server, shared by later runtimes


def test_a_runtime_killed_right_after_the_fork_dies(executor: ProcessExecutor, silent_port: int) -> None:
    for _ in range(5):  # before or after it made itself a session leader: killed either way
        handle = executor.launch(_spec(_shard_env(silent_port)))
        handle.kill()
        assert handle.wait() == -signal.SIGKILL
