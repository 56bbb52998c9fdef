"""``GET .../logs?follow=true``: a job's log lines as NDJSON, streamed as they arrive until the job ends."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import anyio
from sqlalchemy import select

from runbatch.wire.jobs import LogLine
from server.control_plane import ControlPlane
from server.db.tables import JobLogRow, JobRow
from server.jobs.states import TERMINAL_JOB_STATUSES

__all__ = ["KEEPALIVE", "follow_logs"]

# A blank line: NDJSON readers skip it; it keeps proxies and client read timeouts from closing a quiet stream.
KEEPALIVE = b"\n"


@dataclass(frozen=True)
class _Read:
    lines: list[tuple[int, LogLine]]
    ended: bool


def _read(cp: ControlPlane, job_id: uuid.UUID, after: int, instance_id: int | None, last: int) -> _Read:
    with cp.read_sessionmaker() as session:
        # Status before lines: a runner ships its last lines before the job can end, so lines read
        # after seeing a terminal status are all there will be.
        job = session.get(JobRow, job_id)
        ended = job is None or job.deleted_at is not None or job.status in TERMINAL_JOB_STATUSES
        query = select(JobLogRow).where(JobLogRow.job_id == job_id, JobLogRow.id > after)
        if instance_id is not None:
            query = query.where(JobLogRow.instance_id == instance_id)
        if last > 0:
            rows = list(session.scalars(query.order_by(JobLogRow.id.desc()).limit(last)))[::-1]
        else:
            rows = list(session.scalars(query.order_by(JobLogRow.id).limit(5000)))
        return _Read(
            lines=[
                (
                    r.id,
                    LogLine(instance_id=r.instance_id, attempt=r.attempt, logged_at=r.logged_at, line=r.line),
                )
                for r in rows
            ],
            ended=ended and (last > 0 or len(rows) < 5000),
        )


async def follow_logs(
    cp: ControlPlane,
    job_id: uuid.UUID,
    *,
    instance_id: int | None,
    limit: int,
    poll_s: float = 0.5,
    keepalive_s: float = 15.0,
) -> AsyncIterator[bytes]:
    """The last ``limit`` lines (<= 0: all), then every new line, one JSON object a line, until the job ends."""
    after, last = 0, limit
    quiet_since = time.monotonic()
    while True:
        read = await anyio.to_thread.run_sync(_read, cp, job_id, after, instance_id, last)
        last = 0
        if read.lines:
            after = read.lines[-1][0]
            quiet_since = time.monotonic()
            yield b"".join(line.model_dump_json().encode() + b"\n" for _, line in read.lines)
        elif time.monotonic() - quiet_since >= keepalive_s:
            quiet_since = time.monotonic()
            yield KEEPALIVE
        if read.ended:
            return
        if not read.lines:
            await anyio.sleep(poll_s)
