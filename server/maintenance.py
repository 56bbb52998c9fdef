"""The reaper: a periodic pass that turns silent deaths into retries or failures.

Each pass (1) retries or fails shards whose heartbeat went stale, (2) dispatches retries whose
backoff has elapsed, (3) finalizes jobs whose shards all ended (and resumes finalizations a dead
process left half done), (4) fails jobs whose input upload never finished.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from sqlalchemy import select

from server.control_plane import ControlPlane
from server.db.tables import JobRow, ShardRow, utcnow
from server.jobs import shards as shard_protocol
from server.jobs.finalize import finalize, ready_to_finalize
from server.jobs.states import JobPhase, JobStatus, ShardState, transition_job, transition_phase

__all__ = ["Maintenance"]

log = logging.getLogger("runbatch.server.maintenance")

_STALE_FINALIZATION = timedelta(seconds=60)


class Maintenance:
    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.cp.settings.maintenance_interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="runbatch-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.cp.settings.maintenance_interval_s):
            try:
                self.run_once()
            except Exception:
                log.exception("maintenance pass failed; trying again next interval")

    def run_once(self) -> None:
        self.reap_stale_shards()
        self.dispatch_due()
        self.finalize_ended_jobs()
        self.expire_uploads()

    def reap_stale_shards(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self.cp.settings.heartbeat_timeout_s)
        with self.cp.sessionmaker() as session:
            stale = list(
                session.scalars(
                    select(ShardRow).where(
                        ShardRow.state == ShardState.RUNNING, ShardRow.heartbeat_at < cutoff
                    )
                )
            )
            orphaned = session.scalars(
                select(ShardRow).where(
                    ShardRow.state.in_([ShardState.DONE, ShardState.FAILED, ShardState.CANCELLED]),
                    ShardRow.finished_at.is_(None),
                    ShardRow.heartbeat_at < cutoff,
                )
            )
            for shard in orphaned:  # the runtime reported its end but its worker never did
                shard.finished_at = utcnow()
            for shard in stale:
                log.warning(
                    "shard %s of job %s lost its heartbeat; retrying or failing it",
                    shard.index,
                    shard.job.name,
                )
                shard_protocol.fail(
                    session,
                    shard.id,
                    shard.attempt,
                    f"The runtime stopped sending heartbeats for {self.cp.settings.heartbeat_timeout_s:.0f}s "
                    "(its worker or host died).",
                    retryable=True,
                )
            session.commit()

    def dispatch_due(self) -> None:
        now = utcnow()
        with self.cp.sessionmaker() as session:
            due = list(
                session.scalars(
                    select(ShardRow).where(
                        ShardRow.state == ShardState.PENDING,
                        ShardRow.not_before.is_not(None),
                        ShardRow.not_before <= now,
                    )
                )
            )
            by_pool: dict[str, list[ShardRow]] = {}
            for shard in due:
                shard.not_before = None
                by_pool.setdefault(shard.job.compute_pool, []).append(shard)
            session.commit()
        for pool, shards in by_pool.items():
            self.cp.dispatcher.dispatch(pool, [s.id for s in shards])

    def finalize_ended_jobs(self) -> None:
        with self.cp.sessionmaker() as session:
            active = list(
                session.scalars(
                    select(JobRow).where(JobRow.phase.not_in([JobPhase.FINISHED, JobPhase.AWAITING_INPUT]))
                )
            )
            cancelled_uploads = list(
                session.scalars(
                    select(JobRow).where(
                        JobRow.phase == JobPhase.AWAITING_INPUT, JobRow.status == JobStatus.CANCELLING
                    )
                )
            )
            ready = [j.id for j in active + cancelled_uploads if ready_to_finalize(j)]
            stale = [
                j.id
                for j in active
                if j.phase == JobPhase.FINALIZING and j.phase_at < utcnow() - _STALE_FINALIZATION
            ]
        for job_id in ready:
            finalize(self.cp, job_id)
        for job_id in stale:
            log.warning("resuming the finalization of job %s", job_id)
            finalize(self.cp, job_id, resume=True)

    def expire_uploads(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self.cp.settings.input_upload_timeout_s)
        with self.cp.sessionmaker() as session:
            for job in session.scalars(
                select(JobRow).where(JobRow.phase == JobPhase.AWAITING_INPUT, JobRow.created_at < cutoff)
            ):
                message = "The client never finished uploading the job's input."
                if transition_phase(session, job.id, from_={JobPhase.AWAITING_INPUT}, to=JobPhase.FINISHED):
                    transition_job(
                        session,
                        job.id,
                        from_={JobStatus.PENDING},
                        to=JobStatus.FAILED,
                        message=message,
                        finished_at=utcnow(),
                    )
                    self.cp.storage.delete_tree(job.spec["temporary_key"])
            session.commit()
