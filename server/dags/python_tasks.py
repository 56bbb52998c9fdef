"""Python tasks run as subprocesses of the control plane process that runs their DAG run.

Each task gets a ``python -m runbatch.core.task._runner`` process and a temporary folder with
its pickled callable, its run context, the control plane's URL and an API token made for the
task (deleted when it ends). One process is kept ready ahead, its libraries imported, waiting
on stdin for a folder, so a task does not pay for interpreter start-up. Processes inherit the
control plane's environment without its ``RUNBATCH_*`` settings (database URL, storage keys) and
``AWS_*`` credentials: a task reaches runbatch only through the REST API, as any client does.
They run with the control plane's Python and packages, as the control plane's OS user: a Python
task is trusted code, as a notebook is.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import IO

from pydantic import ValidationError
from sqlalchemy import delete, update

from runbatch.core.task._runner import (
    CONNECTION_FILE,
    CONTEXT_FILE,
    DEFINITION_FILE,
    RESULT_FILE,
    STARTED_FILE,
)
from runbatch.wire.dags import TaskRunContext, TaskRunResult
from server.auth.tokens import ROLE_ADMIN, create_token, hash_secret
from server.control_plane import ControlPlane
from server.db.tables import ApiTokenRow, utcnow

__all__ = ["Stop", "TaskOutcome", "TaskProcesses", "run_python_task"]

_LOG_LINES = 200
# The control plane's own settings and cloud credentials stay out of user code's environment.
_PRIVATE_ENV = ("RUNBATCH_", "AWS_")
_LINE_CHARS = 2000
# Between SIGTERM and SIGKILL: a batch inference task cancels its job in this time.
_STOP_GRACE_S = 15.0
# A process that has not picked up its task by then is stuck (imports hanging, a full disk).
_START_TIMEOUT_S = 120.0


@dataclass
class Stop:
    """Set when a run must stop (dropped, or its control plane is shutting down), with the reason."""

    event: threading.Event = field(default_factory=threading.Event)
    reason: str = ""

    def set(self, reason: str) -> None:
        if not self.event.is_set():
            self.reason = reason
            self.event.set()


@dataclass
class TaskOutcome:
    succeeded: bool
    return_value: str | None = None
    error: str | None = None
    job_ids: list[str] = field(default_factory=list)
    log: str = ""


class _TaskProcess:
    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc = proc
        self.lines: deque[str] = deque(maxlen=_LOG_LINES)
        assert proc.stdout is not None
        self.pump = threading.Thread(target=_pump, args=(proc.stdout, self.lines), daemon=True)
        self.pump.start()

    def close_streams(self) -> None:
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None and not stream.closed:
                stream.close()


class TaskProcesses:
    """Starts task processes, keeping one ready ahead."""

    def __init__(self) -> None:
        self._spare: _TaskProcess | None = None
        self._lock = threading.Lock()
        self._refilling = False
        self._closed = False

    @staticmethod
    def _start() -> _TaskProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_ENV)}
        env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen(
            [sys.executable, "-m", "runbatch.core.task._runner", "--wait"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a stop reaches what it started too
        )
        return _TaskProcess(proc)

    def launch(self, folder: Path) -> _TaskProcess:
        """A process running the task in ``folder``: the spare when it is alive, else a new one."""
        with self._lock:
            task, self._spare = self._spare, None
        if task is None or task.proc.poll() is not None:
            if task is not None:
                task.close_streams()
            task = self._start()
        assert task.proc.stdin is not None
        task.proc.stdin.write(f"{folder}\n".encode())
        task.proc.stdin.close()
        threading.Thread(target=self._refill, name="runbatch-task-spare", daemon=True).start()
        return task

    def _refill(self) -> None:
        with self._lock:
            if self._spare is not None or self._refilling or self._closed:
                return
            self._refilling = True
        spare = self._start()
        with self._lock:
            self._refilling = False
            if self._spare is None and not self._closed:
                self._spare = spare
                return
        spare.close_streams()  # closing its stdin lets it exit
        spare.proc.wait()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            spare, self._spare = self._spare, None
        if spare is not None:
            spare.close_streams()
            try:
                spare.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                spare.proc.kill()
                spare.proc.wait()


def _issue_token(cp: ControlPlane, owner: str, lifetime: timedelta) -> str:
    with cp.sessionmaker() as session:
        secret = create_token(session, name=owner, role=ROLE_ADMIN)
        session.execute(
            update(ApiTokenRow)
            .where(ApiTokenRow.token_hash == hash_secret(secret))
            .values(expires_at=utcnow() + lifetime)
        )
        session.commit()
    return secret


def _delete_token(cp: ControlPlane, secret: str) -> None:
    with cp.sessionmaker() as session:
        session.execute(delete(ApiTokenRow).where(ApiTokenRow.token_hash == hash_secret(secret)))
        session.commit()


def _pump(stream: IO[bytes], lines: deque[str]) -> None:
    for raw in iter(stream.readline, b""):
        lines.append(raw.decode("utf-8", "replace").rstrip("\r\n")[:_LINE_CHARS])


def _terminate(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=_STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _read_result(folder: Path) -> TaskRunResult | None:
    path = folder / RESULT_FILE
    if not path.exists():
        return None
    try:
        return TaskRunResult.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError):
        return None


def run_python_task(
    cp: ControlPlane,
    *,
    payload: bytes,
    context: TaskRunContext,
    owner: str,
    timeout_ms: int,
    stop: Stop,
    processes: TaskProcesses,
) -> TaskOutcome:
    """Run one Python task to its end (or until ``stop`` or its timeout) and say how it went."""
    if not cp.url:
        return TaskOutcome(
            False,
            error="Python tasks call back to the control plane over HTTP, and this control plane serves no HTTP "
            "(it was built without `runbatch server` or an embedded session).",
        )
    timeout_s = timeout_ms / 1000
    secret = _issue_token(cp, owner, timedelta(seconds=timeout_s + _STOP_GRACE_S + 3600))
    try:
        with tempfile.TemporaryDirectory(prefix="runbatch-task-") as tmp:
            folder = Path(tmp)
            (folder / DEFINITION_FILE).write_bytes(payload)
            (folder / CONTEXT_FILE).write_text(context.model_dump_json(by_alias=True))
            connection = folder / CONNECTION_FILE
            connection.touch(mode=0o600)
            connection.write_text(json.dumps({"url": cp.url, "token": secret}))
            task = processes.launch(folder)
            proc = task.proc
            # The timeout counts from the task's start, not from a cold interpreter's imports.
            start_by = time.monotonic() + _START_TIMEOUT_S
            deadline: float | None = None
            stopped: str | None = None
            while True:
                try:
                    proc.wait(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    pass
                if deadline is None and (folder / STARTED_FILE).exists():
                    deadline = time.monotonic() + timeout_s
                if stop.event.is_set():
                    stopped = stop.reason
                elif deadline is not None and time.monotonic() > deadline:
                    stopped = f"The task ran longer than its USER_TASK_TIMEOUT_MS of {timeout_ms} ms and was stopped."
                elif deadline is None and time.monotonic() > start_by:
                    stopped = f"The task's process did not start within {_START_TIMEOUT_S:.0f}s; see its log."
                if stopped is not None:
                    _terminate(proc)
                    break
            code = proc.wait()
            task.pump.join(timeout=5)
            task.close_streams()
            log = "\n".join(task.lines)
            result = _read_result(folder)
    finally:
        _delete_token(cp, secret)
    job_ids = result.job_ids if result is not None else []
    if stopped is not None:
        return TaskOutcome(False, error=stopped, job_ids=job_ids, log=log)
    if result is None:
        return TaskOutcome(
            False,
            error=f"The task's process exited with code {code} without reporting an outcome; see its log.",
            log=log,
        )
    if result.error is not None or code != 0:
        return TaskOutcome(
            False,
            return_value=result.return_value,
            error=result.error or f"The task's process exited with code {code}.",
            job_ids=job_ids,
            log=log,
        )
    return TaskOutcome(True, return_value=result.return_value, job_ids=job_ids, log=log)
