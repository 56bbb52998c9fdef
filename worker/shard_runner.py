"""run_shard: claim -> launch -> watch (logs, heartbeats, cancel) -> report. A plain function.

Celery tasks and the in-process dispatcher both call it; it is safe to call twice for one
shard (the claim is a compare-and-set), which is what at-least-once delivery needs.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
import threading
import uuid

from runbatch.client import ControlPlaneClient
from runbatch.errors import (
    ConflictError,
    InternalError,
    NotFoundError,
    RunbatchError,
    ServiceUnavailableError,
    TransportError,
)
from runbatch.log_format import log_context
from runbatch.runtime import EXIT_CANCELLED, EXIT_OK, EXIT_REPORTED_FAILURE
from runbatch.wire.jobs import ShardAssignment
from worker.executors.base import Executor, LaunchRefused, LaunchSpec, RuntimeHandle
from worker.log_shipper import LogShipper
from worker.settings import WorkerSettings

__all__ = ["ShardRunner"]

log = logging.getLogger("runbatch.worker")

# A claim that fails for a passing reason (a busy or restarting control plane) is tried again
# over about half a minute before the shard is left to the reaper's redispatch.
_CLAIM_RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 16.0)
_RUNTIME_TUNING = "RUNBATCH_FILE_"


class _Heartbeat:
    """Beats for the shard while its runtime lives; kills the runtime when told to stop."""

    def __init__(
        self,
        client: ControlPlaneClient,
        shard_id: uuid.UUID,
        attempt: int,
        interval: float,
    ) -> None:
        self.client, self.shard_id, self.attempt = client, shard_id, attempt
        # Beats start at the claim: preparing a runtime (building its image) may take minutes.
        self.handle: RuntimeHandle | None = None
        self._lock = threading.Lock()
        self.stopped_on_request = False
        self._done = threading.Event()
        self._interval = interval
        self._thread = threading.Thread(target=self._loop, name="heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._done.wait(self._interval):
            try:
                ack = self.client.heartbeat(self.shard_id, self.attempt)
            except NotFoundError:  # its job (or database) was deleted: nothing will take the output
                log.warning("shard %s no longer exists; stopping its runtime", self.shard_id)
                self._stop()
                return
            except RunbatchError as exc:
                log.warning("heartbeat for shard %s failed: %s", self.shard_id, exc)
                continue
            if ack.cancel:
                self._stop()
                return

    def _stop(self) -> None:
        with self._lock:
            self.stopped_on_request = True
            handle = self.handle
        if handle is not None:
            handle.kill()

    def attach(self, handle: RuntimeHandle) -> None:
        """The runtime, once started; killed at once when a stop came while it was being prepared."""
        with self._lock:
            self.handle = handle
            stopped = self.stopped_on_request
        if stopped:
            handle.kill()

    def close(self) -> None:
        self._done.set()
        self._thread.join(timeout=10)


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (killed: out of memory, or stopped by the host)" if -code == signal.SIGKILL else ""
        return f"The runtime was killed by {name}{hint}."
    return f"The runtime exited with code {code}."


class ShardRunner:
    def __init__(
        self,
        client: ControlPlaneClient,
        executor: Executor,
        settings: WorkerSettings,
        name: str,
        env: dict[str, str],
    ) -> None:
        self.client = client
        self.executor = executor
        self.settings = settings
        self.name = name
        self.env = env
        self._running: dict[uuid.UUID, RuntimeHandle] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Start nothing more and kill the runtimes running now (their shards are retried)."""
        self._stopping.set()
        with self._lock:
            handles = list(self._running.values())
        for handle in handles:
            handle.kill()

    def _claim(self, shard_id: uuid.UUID) -> ShardAssignment | None:
        for delay in (*_CLAIM_RETRY_DELAYS_S, None):
            if self._stopping.is_set():
                return None
            try:
                return self.client.claim_shard(shard_id, self.name)
            except (ConflictError, NotFoundError) as exc:
                log.info("not running shard %s: %s", shard_id, exc)
                return None
            except (ServiceUnavailableError, TransportError, InternalError) as exc:
                if delay is None:
                    break
                log.warning("claiming shard %s failed (%s); trying again in %ss", shard_id, exc, delay)
                self._stopping.wait(delay)
            except RunbatchError as exc:
                log.error("claiming shard %s failed: %s", shard_id, exc)
                break
        # Still PENDING: the control plane's reaper dispatches it again.
        log.warning("giving up on claiming shard %s for now; it will be dispatched again", shard_id)
        return None

    def run(self, shard_id: uuid.UUID, *, threads: int | None = None) -> None:
        assignment = self._claim(shard_id)
        if assignment is None:
            return
        work = assignment.work
        context = log_context(
            job=work.job_id,
            job_name=work.job_name,
            shard=shard_id,
            shard_index=work.index,
            attempt=work.attempt,
        )
        log.info(
            "running shard %s of job %s, attempt %s", work.index, work.job_name, work.attempt, extra=context
        )
        shipper = LogShipper(
            lambda lines: self.client.append_logs(shard_id, work.attempt, lines),
            self.settings.log_flush_interval_s,
            f"shard {shard_id}",
        )
        shipper.add(
            f"[runbatch] worker {self.name} starting shard {work.index} of job {work.job_name}, attempt {work.attempt}."
        )
        env = dict(self.env)
        # Runtime tuning set on the worker's host reaches runtimes in containers too.
        env.update({k: v for k, v in os.environ.items() if k.startswith(_RUNTIME_TUNING)})
        env.update(
            RUNBATCH_API_URL=self.client.base_url,
            RUNBATCH_SHARD_ID=str(shard_id),
            RUNBATCH_SHARD_TOKEN=assignment.token,
        )
        tail: collections.deque[str] = collections.deque(maxlen=20)
        beat = _Heartbeat(self.client, shard_id, work.attempt, self.settings.heartbeat_interval_s)
        try:
            handle = self.executor.launch(
                LaunchSpec(
                    job_name=work.job_name,
                    job_id=str(work.job_id),
                    shard_index=work.index,
                    attempt=work.attempt,
                    env=env,
                    cpu_requests=work.cpu_requests,
                    memory_requests=work.memory_requests,
                    gpu_requests=work.gpu_requests,
                    threads=threads,
                    pip_requirements=tuple(work.pip_requirements),
                    conda_dependencies=tuple(work.conda_dependencies),
                    python_version=work.python_version,
                    force_rebuild=work.force_rebuild,
                    image_repo=work.image_repo,
                )
            )
        except Exception as exc:
            beat.close()
            message = f"The runtime could not be started: {exc}"
            shipper.add(f"[runbatch] {message}")
            shipper.close()
            self._report(shard_id, work.attempt, -1, message, retryable=not isinstance(exc, LaunchRefused))
            return
        beat.attach(handle)
        with self._lock:
            self._running[shard_id] = handle
        try:
            try:
                for line in handle.lines():
                    shipper.add(line)
                    tail.append(line)
            except Exception as exc:  # the log stream broke (engine restart): end the runtime, report it
                log.warning("reading the output of shard %s failed: %s; stopping its runtime", shard_id, exc)
                tail.append(f"[runbatch] reading the runtime's output failed: {exc}")
                handle.kill()
            code = handle.wait()
        finally:
            beat.close()
            with self._lock:
                self._running.pop(shard_id, None)
        if code in (EXIT_OK, EXIT_REPORTED_FAILURE):
            message, retryable = "The runtime exited without reporting a result.", True
        elif code == EXIT_CANCELLED or beat.stopped_on_request:
            message, retryable = "Stopped on request.", False
        elif (known := handle.exit_message(code)) is not None:
            message, retryable = known
        else:
            last = next((line for line in reversed(tail) if line.strip()), "")
            message, retryable = describe_exit(code) + (f" Last output: {last}" if last else ""), True
        if code not in (EXIT_OK, EXIT_REPORTED_FAILURE):
            shipper.add(f"[runbatch] {message}")
        shipper.close()
        log.info("shard %s of job %s exited with code %s", work.index, work.job_name, code, extra=context)
        # Ends a still-running attempt, or marks the runtime's own report (done or failed) finished.
        self._report(shard_id, work.attempt, code, message, retryable=retryable)

    def _report(self, shard_id: uuid.UUID, attempt: int, code: int, message: str, *, retryable: bool) -> None:
        try:
            self.client.shard_exit(shard_id, attempt, code, message, retryable=retryable)
        except RunbatchError as exc:
            log.warning("could not report the end of shard %s: %s (the reaper will)", shard_id, exc)
