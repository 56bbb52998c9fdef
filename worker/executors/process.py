"""One runtime process per shard attempt (the embedded default and ``RUNBATCH_EXECUTOR=process``).

By default runtimes are forked from a fork server (``runbatch.runtime.forkserver``) that imported
the libraries once, so a shard pays neither interpreter start-up nor imports; without one, a
runtime is a new ``python -m runbatch.runtime`` interpreter.
"""

from __future__ import annotations

import json
import logging
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from runbatch.compute import parse_cpu
from runbatch.runtime.forkserver import FD_ENV, die_with_parent
from runbatch.runtime.requirements import as_pip_requirement
from worker.executors.base import LaunchSpec, RuntimeHandle

__all__ = ["ForkedHandle", "ProcessExecutor", "ProcessHandle", "cpu_count_for", "frameworks"]

_MAX_REPLY = 4096

log = logging.getLogger("runbatch.worker")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


def cpu_count_for(cpu_requests: str | None) -> int | None:
    """Snowflake's CPU strings ("2", "0.5", "500m") as a thread count."""
    return max(1, math.ceil(parse_cpu(cpu_requests))) if cpu_requests else None


class ProcessHandle:
    """A runtime started as a new interpreter: our own child."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._proc = proc

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
        return code

    def exit_message(self, code: int) -> tuple[str, bool] | None:
        return None  # the exit code says it all (see shard_runner.describe_exit)

    def kill(self) -> None:
        # The runtime is a session leader: kill its whole group (BLAS helpers, fetch threads' children).
        try:
            os.killpg(self._proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


# Model frameworks by the distribution a model's requirements name: the fork server imports them
# once, before forking, for every later shard of any model that needs them.
_FRAMEWORKS = {
    "scikit-learn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "torch": "torch",
    "transformers": "transformers",
    "sentence-transformers": "sentence_transformers",
}


def frameworks(requirements: tuple[str, ...]) -> list[str]:
    """The modules of the known frameworks among pip requirements or conda dependencies."""
    modules = []
    for line in requirements:
        try:
            name = canonicalize_name(Requirement(as_pip_requirement(line)).name)
        except InvalidRequirement:
            continue
        if name in _FRAMEWORKS and _FRAMEWORKS[name] not in modules:
            modules.append(_FRAMEWORKS[name])
    return modules


class ForkedHandle:
    """A runtime forked by the fork server: not our child, so its exit code comes from the server."""

    def __init__(self, server: _ForkServer, pid: int, output: int) -> None:
        self._server = server
        self.pid = pid
        self._output = output
        self._code: int | None = None

    def lines(self) -> Iterator[str]:
        with open(self._output, encoding="utf-8", errors="replace") as stream:
            for line in stream:
                yield line.rstrip("\n")

    def wait(self) -> int:
        if self._code is None:
            self._code = self._server.wait_exit(self.pid)
        return self._code

    def exit_message(self, code: int) -> tuple[str, bool] | None:
        return None

    def kill(self) -> None:
        if self._code is not None or self._server.exited(self.pid):
            return  # reaped: the pid may belong to someone else by now
        # A session leader: its whole group. Just after the fork it may not have called setsid()
        # yet (no group to kill, nor children of its own), so it is also killed by pid.
        for kill in (os.killpg, os.kill):
            try:
                kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class _ForkServer:
    """The worker's side of ``runbatch.runtime.forkserver``.

    One thread starts the server and then reads its messages for as long as the executor lives:
    the server is tied to that thread by PR_SET_PDEATHSIG, so it must not be a short-lived one. A
    server that dies is started again; one that cannot start at all leaves launches to cold starts.
    """

    _START_TIMEOUT_S = 120.0

    def __init__(self, python: str, preload: str) -> None:
        self.python, self.preload = python, preload
        self._lock = threading.Condition()
        self._launch_lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._ready = False
        self._given_up = False
        self._closed = False
        self._replies: queue.Queue[dict[str, Any]] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._running: set[int] = set()
        threading.Thread(target=self._serve, name="runtime-forkserver", daemon=True).start()

    def _start(self) -> socket.socket:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = dict(os.environ, PYTHONUNBUFFERED="1", RUNBATCH_PRELOAD=self.preload)
        env[FD_ENV] = str(theirs.fileno())
        self._proc = subprocess.Popen(
            [self.python, "-m", "runbatch.runtime.forkserver"],
            env=env,
            stdin=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        theirs.close()
        return ours

    def _serve(self) -> None:
        failures = 0
        while failures < 3:
            with self._lock:
                if self._closed:
                    return
            sock = self._start()
            with self._lock:
                self._sock = sock
                if self._closed:
                    sock.shutdown(socket.SHUT_RDWR)
            ready = self._read(sock)
            failures = 0 if ready else failures + 1
            self._lost()
            time.sleep(0.5 * failures)
        log.warning("the runtime fork server did not start (3 tries); runtimes start cold")
        with self._lock:
            self._given_up = True
            self._lock.notify_all()

    def _read(self, sock: socket.socket) -> bool:
        """Handle the server's messages until it goes away; True when it had become ready."""
        ready = False
        while True:
            try:
                data = sock.recv(_MAX_REPLY)
            except OSError:
                data = b""
            if not data:
                return ready
            message = json.loads(data)
            if "ready" in message:
                ready = True
                with self._lock:
                    self._ready = True
                    self._lock.notify_all()
            elif "exit" in message:
                with self._lock:
                    self._running.discard(message["exit"])
                    self._exits[message["exit"]] = message["code"]
                    self._lock.notify_all()
            else:
                self._replies.put(message)

    def _lost(self) -> None:
        """The server is gone, and with it its runtimes (they die with it): they count as killed."""
        with self._lock:
            self._ready = False
            sock, self._sock = self._sock, None
            for pid in self._running:
                self._exits[pid] = -signal.SIGKILL
            self._running.clear()
            self._lock.notify_all()
        self._replies.put({"error": "the fork server ended"})
        if sock is not None:
            sock.close()
        if self._proc is not None:
            _terminate(self._proc)

    def launch(self, env: dict[str, str], preload: list[str]) -> ForkedHandle | None:
        """Fork a runtime with exactly ``env`` as its environment, after the server has imported
        ``preload``; None when no server can."""
        with self._lock:
            self._lock.wait_for(lambda: self._ready or self._given_up or self._closed, self._START_TIMEOUT_S)
            sock = self._sock if self._ready else None
        if sock is None:
            return None
        with self._launch_lock:
            while not self._replies.empty():
                self._replies.get_nowait()  # a stale error from a server that ended
            read, write = os.pipe()
            try:
                socket.send_fds(sock, [json.dumps({"env": env, "preload": preload}).encode()], [write])
                reply = self._replies.get(timeout=self._START_TIMEOUT_S)  # imports may come first
            except (OSError, queue.Empty) as exc:
                os.close(read)
                log.warning("the runtime fork server did not answer (%s); starting a cold runtime", exc)
                return None
            finally:
                os.close(write)
            if "pid" not in reply:
                os.close(read)
                log.warning("the runtime fork server refused a launch (%s); starting a cold runtime", reply)
                return None
            with self._lock:
                if reply["pid"] not in self._exits:
                    self._running.add(reply["pid"])
            return ForkedHandle(self, reply["pid"], read)

    def exited(self, pid: int) -> bool:
        with self._lock:
            return pid in self._exits

    def wait_exit(self, pid: int) -> int:
        with self._lock:
            self._lock.wait_for(lambda: pid in self._exits)
            return self._exits.pop(pid)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
            sock = self._sock
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)  # the server sees EOF and ends; _serve cleans up


class ProcessExecutor:
    """Runtimes as processes of this host: forked from a fork server that has the libraries
    imported (the default), or started as new interpreters (``fork=False``, or while no fork
    server is available)."""

    def __init__(self, python: str | None = None, *, fork: bool = True, preload: str = "") -> None:
        self.python = python or sys.executable
        self._server = _ForkServer(self.python, preload) if fork else None

    def _spawn(self, env: dict[str, str]) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [self.python, "-m", "runbatch.runtime"],
            env=dict(env, PYTHONUNBUFFERED="1"),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            start_new_session=True,
            preexec_fn=die_with_parent,
        )

    def launch(self, spec: LaunchSpec) -> RuntimeHandle:
        threads = cpu_count_for(spec.cpu_requests) or spec.threads
        env = dict(os.environ)
        env.update(spec.env)
        if threads:
            env.update({var: str(threads) for var in _THREAD_VARS})
            env["RUNBATCH_THREADS"] = str(threads)
        if self._server is not None:
            forked = self._server.launch(env, frameworks(spec.pip_requirements + spec.conda_dependencies))
            if forked is not None:
                return forked
        return ProcessHandle(self._spawn(env))

    def close(self) -> None:
        if self._server is not None:
            self._server.close()


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        _kill(proc)


def _kill(proc: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()
    for stream in (proc.stdout, proc.stdin):
        if stream is not None and not stream.closed:
            stream.close()
