"""One ``python -m runbatch.runtime`` subprocess per shard attempt (the embedded default).

A few runtimes are started ahead of time ("warm"): they import the heavy libraries and then
wait on stdin for a shard, so a shard does not pay for interpreter start-up and imports.
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

from runbatch.compute import parse_cpu
from worker.executors.base import LaunchSpec

__all__ = ["ProcessExecutor", "ProcessHandle", "cpu_count_for"]

log = logging.getLogger("runbatch.worker")

_PR_SET_PDEATHSIG = 1
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def cpu_count_for(cpu_requests: str | None) -> int | None:
    """Snowflake's CPU strings ("2", "0.5", "500m") as a thread count."""
    return max(1, math.ceil(parse_cpu(cpu_requests))) if cpu_requests else None


class ProcessHandle:
    def __init__(self, proc: subprocess.Popen[str], on_exit: Callable[[], None] = lambda: None) -> None:
        self._proc = proc
        self._on_exit = on_exit
        self._exited = False

    def lines(self) -> Iterator[str]:
        assert self._proc.stdout is not None
        with self._proc.stdout:
            for line in self._proc.stdout:
                yield line.rstrip("\n")

    def wait(self) -> int:
        code = self._proc.wait()
        for stream in (self._proc.stdout, self._proc.stdin):
            if stream is not None and not stream.closed:
                stream.close()
        if not self._exited:
            self._exited = True
            self._on_exit()
        return code

    def exit_message(self, code: int) -> tuple[str, bool] | None:
        return None  # the exit code says it all (see shard_runner.describe_exit)

    def kill(self) -> None:
        # The runtime is a session leader: kill its whole group (BLAS helpers, fetch threads' children).
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _die_with_parent() -> None:
    """Runs in the child before exec: if the worker dies (even by SIGKILL), the runtime dies too.

    Linux ties this to the thread that forked, so runtimes are only ever started from threads
    that live as long as the worker (slot threads, the one refill thread).
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass


class ProcessExecutor:
    def __init__(self, python: str | None = None, *, warm: int = 0, preload: str = "") -> None:
        self.python = python or sys.executable
        self.warm = warm
        self.preload = preload
        self._idle: list[subprocess.Popen[str]] = []
        self._lock = threading.Condition()
        self._closed = False
        self._busy = 0
        if warm:
            threading.Thread(target=self._refill, name="warm-runtimes", daemon=True).start()

    def _spawn(self, env: dict[str, str], *, warm: bool) -> subprocess.Popen[str]:
        env = dict(env, PYTHONUNBUFFERED="1")
        if warm:
            env.update(RUNBATCH_WARM="1", RUNBATCH_PRELOAD=self.preload)
        return subprocess.Popen(
            [self.python, "-m", "runbatch.runtime"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.PIPE if warm else subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )

    def _refill(self) -> None:
        """One long-lived thread keeps ``warm`` idle runtimes, starting them only while no shard runs
        (starting one costs a second or two of CPU)."""
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or (self._busy == 0 and len(self._idle) < self.warm))
                if self._closed:
                    return
            proc = self._spawn(dict(os.environ), warm=True)
            with self._lock:
                if self._closed:
                    _kill(proc)
                    return
                self._idle.append(proc)

    def _take_warm(self) -> subprocess.Popen[str] | None:
        dead = []
        found = None
        with self._lock:
            while self._idle:
                proc = self._idle.pop(0)
                if proc.poll() is None:
                    found = proc
                    break
                dead.append(proc)
        for proc in dead:
            _kill(proc)  # reap it and close its pipes
        return found

    def launch(self, spec: LaunchSpec) -> ProcessHandle:
        threads = cpu_count_for(spec.cpu_requests) or spec.threads
        proc = self._take_warm()
        if proc is not None:
            assignment = dict(spec.env)
            if threads:
                assignment["RUNBATCH_THREADS"] = str(threads)
            try:
                assert proc.stdin is not None
                proc.stdin.write(json.dumps(assignment) + "\n")
                proc.stdin.close()
            except OSError:
                log.warning("a warm runtime died while idle; starting a cold one")
                _kill(proc)
                proc = None
        if proc is None:
            env = dict(os.environ)
            env.update(spec.env)
            if threads:
                env.update({var: str(threads) for var in _THREAD_VARS})
            proc = self._spawn(env, warm=False)
        with self._lock:
            self._busy += 1
        return ProcessHandle(proc, self._exited)

    def _exited(self) -> None:
        with self._lock:
            self._busy -= 1
            self._lock.notify_all()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            idle, self._idle = self._idle, []
        for proc in idle:
            _kill(proc)


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    for stream in (proc.stdout, proc.stdin):
        if stream is not None and not stream.closed:
            stream.close()
