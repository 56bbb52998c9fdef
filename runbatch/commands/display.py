"""How operator commands show things: tables, statuses, row counts, times, and a live job progress bar."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from runbatch.wire.jobs import JobPublic

__all__ = [
    "JobProgress",
    "console",
    "duration",
    "rows_progress",
    "status_text",
    "table",
    "throughput",
    "timestamp",
]

_STATUS_STYLES = {
    "DONE": "green",
    "RUNNING": "cyan",
    "PENDING": "blue",
    "CANCELLING": "yellow",
    "CANCELLED": "yellow",
    "FAILED": "red",
    "INTERNAL_ERROR": "red",
    "DELETED": "dim",
}


def console() -> Console:
    # Piped into grep or a file, a table keeps its natural width instead of wrapping at 80 columns.
    wide = not sys.stdout.isatty() and not os.environ.get("COLUMNS")
    return Console(highlight=False, width=250 if wide else None)


def table(*headers: str) -> Table:
    """A borderless table: columns two spaces apart, easy to read and to cut."""
    grid = Table(box=None, pad_edge=False, header_style="bold", show_edge=False)
    for header in headers:
        grid.add_column(header, no_wrap=header not in ("MESSAGE", "COMMENT"))
    return grid


def status_text(status: str) -> Text:
    return Text(status, style=_STATUS_STYLES.get(status, ""))


def rows_progress(job: JobPublic) -> str:
    if job.rows_total is None:
        return f"{job.rows_done:,}"
    percent = 100 if job.rows_total == 0 else job.rows_done * 100 // job.rows_total
    return f"{job.rows_done:,}/{job.rows_total:,} ({percent}%)"


def timestamp(at: datetime | None) -> str:
    """UTC, to the second; '-' before it happened."""
    if at is None:
        return "-"
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%d %H:%M:%S")


def duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _elapsed(job: JobPublic) -> float | None:
    if job.started_at is None:
        return None
    end = job.finished_at or datetime.now(UTC)
    return max(0.0, (end - job.started_at).total_seconds())


def throughput(job: JobPublic) -> str:
    elapsed = _elapsed(job)
    if elapsed is None or elapsed == 0:
        return "-"
    return f"{job.rows_done / elapsed:,.1f} rows/s"


class JobProgress:
    """A live bar of a job's rows while an operator watches it; without a terminal (CI logs, a pipe),
    one line per status change instead."""

    def __init__(self, out: Console, job: JobPublic) -> None:
        self._out = out
        self._live = out.is_interactive
        self._last_status: str | None = None
        self._progress = Progress(
            TextColumn("[bold]{task.fields[name]}"),
            TextColumn("{task.fields[status]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("rows  {task.fields[rate]}"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        )
        self._task: TaskID = self._progress.add_task(
            job.name, total=job.rows_total, name=job.name, status="", rate=""
        )

    def __enter__(self) -> JobProgress:
        if self._live:
            self._progress.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._live:
            self._progress.stop()

    def update(self, job: JobPublic) -> None:
        if not self._live:
            if job.status != self._last_status:
                self._out.print(f"{job.id} {job.status} {rows_progress(job)}")
                self._last_status = job.status
            return
        self._progress.update(
            self._task,
            total=job.rows_total,
            completed=job.rows_done,
            status=status_text(job.status).markup,
            rate=throughput(job),
        )
