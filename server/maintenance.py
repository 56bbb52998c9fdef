"""The reaper: a periodic pass that turns silent deaths into retries or failures.

Each pass (1) retries or fails shards whose heartbeat went stale, (2) dispatches retries whose
backoff has elapsed, (3) finalizes jobs whose shards all ended (and resumes finalizations a dead
process left half done), (4) fails jobs whose input upload never finished.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import and_, or_, select, text

from runbatch.log_format import log_context
from server.control_plane import ControlPlane
from server.db.tables import JobRow, ShardRow, utcnow
from server.jobs import shards as shard_protocol
from server.jobs.finalize import finalize, ready_to_finalize
from server.jobs.service import no_worker_message
from server.jobs.states import JobPhase, JobStatus, ShardState, transition_job, transition_phase
from server.monitoring.refresh import refresh_due
from server.spcs import service as spcs
from server.workers import service as workers

__all__ = ["Maintenance"]

log = logging.getLogger("runbatch.server.maintenance")

_STALE_FINALIZATION = timedelta(seconds=60)
_ADVISORY_LOCK = 0x72756E62  # "runb": the key of the one-reaper-at-a-time lock


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
        """One pass; with several server replicas on Postgres, one of them at a time does it."""
        with self._exclusive() as mine:
            if not mine:
                return
            self.reap_stale_shards()
            self.dispatch_due()
            self.finalize_ended_jobs()
            self.expire_uploads()
            self.explain_waiting_jobs()
            self.refresh_monitors()
            self.reconcile_services()

    def reconcile_services(self) -> None:
        """Services whose worker is gone start again elsewhere (server/spcs/service.py)."""
        with self.cp.sessionmaker() as session:
            again = spcs.reconcile(session, self.cp.settings.heartbeat_timeout_s)
            session.commit()
        dispatcher = self.cp.dispatcher
        if isinstance(dispatcher, spcs.ServiceDispatcher):
            for pool, service_id in again:
                dispatcher.dispatch_service(pool, service_id)

    def refresh_monitors(self) -> None:
        """Model monitors whose refresh_interval has elapsed (suspended ones never refresh)."""
        refresh_due(self.cp)

    @contextlib.contextmanager
    def _exclusive(self) -> Iterator[bool]:
        engine = self.cp.engine
        if engine.dialect.name != "postgresql":
            yield True  # SQLite: one process owns the database file's writes anyway
            return
        with engine.connect() as conn:
            got = bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": _ADVISORY_LOCK}).scalar())
            try:
                yield got
            finally:
                if got:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": _ADVISORY_LOCK})
                conn.commit()

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
            ended: list[ShardRow] = []
            for shard in orphaned:  # the runtime reported its end but its worker never did
                shard.finished_at = utcnow()
                shard.token_hash = None
                ended.append(shard)
            for shard in stale:
                log.warning(
                    "shard %s of job %s lost its heartbeat; retrying or failing it",
                    shard.index,
                    shard.job.name,
                    extra=log_context(
                        job=shard.job_id, job_name=shard.job.name, shard=shard.id, shard_index=shard.index
                    ),
                )
                failed = shard_protocol.fail(
                    session,
                    shard.id,
                    shard.attempt,
                    f"The runtime stopped sending heartbeats for {self.cp.settings.heartbeat_timeout_s:.0f}s "
                    "(its worker or host died).",
                    retryable=True,
                )
                if failed.state != ShardState.RUNNING:
                    ended.append(failed)
            session.commit()
            # Counted once committed: these attempts never get an exit report that would count them.
            for shard in ended:
                self.cp.metrics.shard_ended(shard)

    def dispatch_due(self) -> None:
        """Send retries whose backoff has ended, and shards whose dispatch seems lost (a broker restart).

        Sending a shard twice is harmless: the second claim loses the compare-and-set.
        """
        now = utcnow()
        lost = now - timedelta(seconds=self.cp.settings.redispatch_after_s)
        with self.cp.sessionmaker() as session:
            due = list(
                session.scalars(
                    select(ShardRow)
                    .join(ShardRow.job)
                    .where(
                        ShardRow.state == ShardState.PENDING,
                        JobRow.phase.in_([JobPhase.QUEUED, JobPhase.RUNNING]),
                        or_(
                            ShardRow.not_before <= now,
                            and_(ShardRow.not_before.is_(None), ShardRow.dispatched_at < lost),
                        ),
                    )
                )
            )
            by_pool: dict[str, list[ShardRow]] = {}
            queues: dict[str, int | None] = {}
            for shard in due:
                if shard.not_before is None:  # waiting since its dispatch: was the message lost?
                    pool = shard.job.compute_pool
                    if pool not in queues:
                        queues[pool] = self.cp.dispatcher.pending_messages(pool)
                    if queues[pool] != 0:
                        continue  # still queued (or the dispatcher cannot lose messages)
                shard.not_before = None
                shard.dispatched_at = now
                by_pool.setdefault(shard.job.compute_pool, []).append(shard)
            session.commit()
        for pool, shards in by_pool.items():
            self.cp.dispatcher.dispatch(pool, [s.id for s in shards])

    def explain_waiting_jobs(self) -> None:
        """A queued job says when no live worker serves its pool, and stops saying it when one does."""
        timeout = self.cp.settings.worker_timeout_s
        with self.cp.sessionmaker() as session:
            for job in session.scalars(select(JobRow).where(JobRow.phase == JobPhase.QUEUED)):
                waiting = no_worker_message(job.compute_pool)
                live = bool(workers.live_workers(session, timeout, job.compute_pool))
                if not live and not job.message:
                    job.message = waiting
                elif live and job.message == waiting:
                    job.message = ""
            session.commit()

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
            log.warning("resuming the finalization of job %s", job_id, extra=log_context(job=job_id))
            finalize(self.cp, job_id, resume=True)

    def expire_uploads(self) -> None:
        cutoff = utcnow() - timedelta(seconds=self.cp.settings.input_upload_timeout_s)
        with self.cp.sessionmaker() as session:
            for job in session.scalars(
                select(JobRow).where(JobRow.phase == JobPhase.AWAITING_INPUT, JobRow.created_at < cutoff)
            ):
                message = (
                    "The control plane stopped while running the job's input query; submit the job again."
                    if job.spec["request"]["input"]["kind"] == "query"
                    else "The client never finished uploading the job's input."
                )
                if transition_phase(session, job.id, from_={JobPhase.AWAITING_INPUT}, to=JobPhase.FINISHED):
                    transition_job(
                        session,
                        job.id,
                        from_={JobStatus.PENDING, JobStatus.CANCELLING},
                        to=JobStatus.FAILED,
                        message=message,
                        finished_at=utcnow(),
                    )
                    self.cp.storage.delete_tree(job.spec["temporary_key"])
            session.commit()
