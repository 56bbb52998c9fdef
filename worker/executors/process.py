"""One ``python -m runbatch.runtime`` subprocess per shard attempt (the embedded default)."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

from worker.executors.base import LaunchSpec

__all__ = ["ProcessExecutor", "ProcessHandle"]

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def cpu_count_for(cpu_requests: str | None) -> int | None:
    """Snowflake's CPU strings ("2", "0.5", "500m") as a thread count."""
    if not cpu_requests:
        return None
    value = float(cpu_requests[:-1]) / 1000 if cpu_requests.endswith("m") else float(cpu_requests)
    return max(1, math.ceil(value))


class ProcessHandle:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc

    def lines(self) -> Iterator[str]:
        assert self._proc.stdout is not None
        with self._proc.stdout:
            for line in self._proc.stdout:
                yield line.rstrip("\n")

    def wait(self) -> int:
        code = self._proc.wait()
        if self._proc.stdout is not None and not self._proc.stdout.closed:
            self._proc.stdout.close()
        return code

    def kill(self) -> None:
        # The runtime is a session leader: kill its whole group (BLAS helpers, fetch threads' children).
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ProcessExecutor:
    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def launch(self, spec: LaunchSpec) -> ProcessHandle:
        env = dict(os.environ)
        env.update(spec.env)
        threads = cpu_count_for(spec.cpu_requests) or spec.threads
        if threads:
            for var in _THREAD_VARS:
                env[var] = str(threads)
        env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen(
            [self.python, "-m", "runbatch.runtime"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
        )
        return ProcessHandle(proc)
