"""MLJob: the handle of a batch inference job, as ``snowflake.ml.jobs.MLJob``."""

from __future__ import annotations

import time
from typing import Any, Generic, Literal, TypeVar

from runbatch.errors import JobTimeoutError, RunbatchError
from runbatch.identifiers import parse_qualified_name
from runbatch.snowpark.session import Session, get_active_session
from runbatch.wire.jobs import JobPublic

__all__ = ["JOB_STATUS", "TERMINAL_JOB_STATUSES", "MLJob"]

T = TypeVar("T")

JOB_STATUS = Literal[
    "PENDING", "RUNNING", "FAILED", "DONE", "CANCELLING", "CANCELLED", "INTERNAL_ERROR", "DELETED"
]
TERMINAL_JOB_STATUSES = {"FAILED", "DONE", "CANCELLED", "INTERNAL_ERROR", "DELETED"}


class MLJob(Generic[T]):
    def __init__(
        self, id: str, service_spec: dict[str, Any] | None = None, session: Session | None = None
    ) -> None:
        self._id = id
        self._session = session or get_active_session()
        self._status: str = "PENDING"
        self._info: JobPublic | None = None
        parts = parse_qualified_name(id)
        if len(parts) != 3:
            raise ValueError(f"Invalid job ID: {id}")
        self._database, self._schema, self._name = parts

    @property
    def id(self) -> str:
        return self._id

    @property
    def name(self) -> str:
        return self._name

    def _refresh(self, *, force: bool = False) -> JobPublic:
        if not force and self._info is not None and self._info.status in TERMINAL_JOB_STATUSES:
            return self._info
        self._info = self._session._conn.client.get_job(self._database, self._schema, self._name)
        self._status = self._info.status
        return self._info

    @property
    def status(self) -> JOB_STATUS:
        return self._refresh().status  # type: ignore[return-value]

    @property
    def target_instances(self) -> int:
        return self._refresh().replicas

    @property
    def min_instances(self) -> int:
        return 1

    @property
    def info(self) -> JobPublic:
        """Everything the control plane knows: row and shard counters, phase, timestamps (runbatch)."""
        return self._refresh()

    def wait(self, timeout: float = -1, *, show_progress: bool = False) -> JOB_STATUS:
        """Block until the job ends and return its status (FAILED is returned, not raised).

        ``show_progress=True`` draws a progress bar of rows done (a runbatch extension).
        """
        start = time.monotonic()
        delay = 0.05
        progress = _Progress(self.name) if show_progress else None
        force = True
        try:
            while True:
                info = self._refresh(force=force)
                force = False
                if progress is not None:
                    progress.update(info)
                if info.status in TERMINAL_JOB_STATUSES:
                    return info.status  # type: ignore[return-value]
                if 0 <= timeout <= time.monotonic() - start:
                    raise JobTimeoutError(f"Job {self.name} did not complete within {timeout} seconds")
                sleep = delay if timeout < 0 else min(delay, max(0.0, timeout - (time.monotonic() - start)))
                time.sleep(sleep)
                delay = min(delay * 1.5, 0.25)
        finally:
            if progress is not None:
                progress.close()

    def get_logs(
        self, limit: int = -1, instance_id: int | None = None, *, as_list: bool = False, verbose: bool = False
    ) -> str | list[str]:
        """Log lines of one instance (a shard's index; the head instance 0 by default)."""
        logs = self._session._conn.client.job_logs(
            self._database,
            self._schema,
            self._name,
            instance_id=0 if instance_id is None else instance_id,
            limit=limit,
        )
        lines = [entry.line for entry in logs.data]
        if as_list:
            return lines
        text = "\n".join(lines)
        return text if verbose else text.strip()

    def show_logs(self, limit: int = -1, instance_id: int | None = None, verbose: bool = False) -> None:
        print(self.get_logs(limit, instance_id, verbose=verbose))  # noqa: T201 - show_logs prints, as Snowflake's

    def cancel(self) -> None:
        """Ask the job to stop. Raises RuntimeError if the request fails (as Snowflake's does)."""
        try:
            self._session._conn.client.cancel_job(self._database, self._schema, self._name)
        except RunbatchError as e:
            raise RuntimeError(f"Failed to cancel job, error: {e!r}") from e
        self._info = None

    def result(self, timeout: float = -1) -> T:
        self.wait(timeout)
        error = NotImplementedError(f"Job {self.name} doesn't have a result path configured")
        raise RuntimeError(f"Failed to retrieve result for job, error: {error!r}")

    def get_ray_dashboard_url(self) -> str | None:
        return None

    def __repr__(self) -> str:
        return f"MLJob(id={self._id!r})"


class _Progress:
    def __init__(self, name: str) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
        )
        self._task = self._progress.add_task(name, total=None, rate="")
        self._started = time.monotonic()
        self._progress.start()

    def update(self, info: JobPublic) -> None:
        elapsed = time.monotonic() - self._started
        rate = (
            f"{info.rows_done / elapsed:,.0f} rows/s"
            if elapsed > 0 and info.rows_done
            else info.status.lower()
        )
        self._progress.update(
            self._task,
            total=info.rows_total,
            completed=info.rows_done,
            rate=rate,
            description=f"{info.name[:40]} {info.status}",
        )

    def close(self) -> None:
        self._progress.stop()
