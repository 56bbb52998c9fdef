"""Prometheus metrics of one control plane: what the database says at scrape time, and what ended here.

Jobs by status, shards waiting or running, queue depth and worker capacity are read from the
metadata database (and the dispatcher) when Prometheus scrapes, so every server replica reports the
same, true values. Shard durations and rows processed are counted by the replica that received the
shard's exit report: sum them over replicas.

Each control plane has its own registry (no process-wide default registry), so several control
planes in one process, as in tests, never share or duplicate series.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from server.db.tables import ComputePoolRow, JobRow, ShardRow, utcnow
from server.jobs.states import JobStatus, ShardState
from server.workers.service import live_workers

if TYPE_CHECKING:
    from server.control_plane import ControlPlane

__all__ = ["SHARD_DURATION_BUCKETS", "ServerMetrics", "attempt_open"]

# Shards run from seconds (a small table) to hours (a large model over many files).
SHARD_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, float("inf"))

_ENDED = (ShardState.DONE, ShardState.FAILED, ShardState.CANCELLED)
_WAITING_OR_RUNNING = (ShardState.PENDING, ShardState.RUNNING)


def attempt_open(shard: ShardRow, attempt: int) -> bool:
    """Whether a worker's exit report for ``attempt`` ends it now (a retried report ends nothing).

    Mirrors ``server.jobs.shards.exit_reported``: an attempt ends when it is still running, or when
    its runtime reported the end and the worker's report is the last word.
    """
    if shard.attempt != attempt:
        return False
    return shard.state == ShardState.RUNNING or (shard.finished_at is None and shard.state in _ENDED)


class ServerMetrics:
    """The registry of one control plane, with the series it counts itself."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.shard_seconds = Histogram(
            "runbatch_shard_duration_seconds",
            "Run time of shard attempts that ended, from claim to the worker's exit report.",
            ["compute_pool", "outcome"],
            buckets=SHARD_DURATION_BUCKETS,
            registry=self.registry,
        )
        self.rows_processed = Counter(
            "runbatch_rows_processed",
            "Input rows processed by shard attempts that succeeded (their rows_done).",
            ["compute_pool"],
            registry=self.registry,
        )
        self.rows_failed = Counter(
            "runbatch_rows_failed",
            "Input rows that failed (error rows) in shard attempts that succeeded.",
            ["compute_pool"],
            registry=self.registry,
        )
        self._watched: ControlPlane | None = None
        self._lock = threading.Lock()

    def watch(self, cp: ControlPlane) -> None:
        """Report ``cp``'s database, dispatcher and workers at scrape time (once; again is a no-op)."""
        with self._lock:
            if self._watched is cp:
                return
            if self._watched is not None:
                raise RuntimeError("These metrics already report another control plane.")
            self.registry.register(_StateCollector(cp))
            self._watched = cp

    def shard_ended(self, shard: ShardRow) -> None:
        """Count a shard attempt that just ended (the caller checked ``attempt_open`` before ending it)."""
        if shard.started_at is None:
            return
        pool = shard.job.compute_pool
        # A retried attempt is PENDING again, without a finished_at: it ended now.
        ended_at = shard.finished_at or utcnow()
        outcome = "retried" if shard.state == ShardState.PENDING else str(shard.state).lower()
        seconds = max(0.0, (ended_at - shard.started_at).total_seconds())
        self.shard_seconds.labels(compute_pool=pool, outcome=outcome).observe(seconds)
        if shard.state == ShardState.DONE:
            self.rows_processed.labels(compute_pool=pool).inc(shard.rows_done)
            self.rows_failed.labels(compute_pool=pool).inc(shard.rows_failed)

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)


class _StateCollector(Collector):
    """Gauges read from the metadata database, the dispatcher and the worker registry at each scrape."""

    def __init__(self, cp: ControlPlane) -> None:
        self.cp = cp

    def collect(self) -> Iterator[Metric]:
        cp = self.cp
        with cp.read_sessionmaker() as session:
            by_status = {
                str(status): int(count)
                for status, count in session.execute(
                    select(JobRow.status, func.count()).group_by(JobRow.status)
                )
            }
            shards = [
                (str(pool), str(state), int(count))
                for pool, state, count in session.execute(
                    select(JobRow.compute_pool, ShardRow.state, func.count())
                    .join(ShardRow.job)
                    .where(ShardRow.state.in_(_WAITING_OR_RUNNING))
                    .group_by(JobRow.compute_pool, ShardRow.state)
                )
            ]
            pools = set(session.scalars(select(ComputePoolRow.name)))
            workers = live_workers(session, cp.settings.worker_timeout_s)
        for worker in workers:
            pools.update(p for p in worker.pools if p != "*")
        pools.update(pool for pool, _, _ in shards)

        jobs = GaugeMetricFamily("runbatch_jobs", "Jobs by status.", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], by_status.get(status.value, 0))
        yield jobs

        counts = {(pool, state): count for pool, state, count in shards}
        waiting = GaugeMetricFamily(
            "runbatch_shards",
            "Shards waiting for a worker (PENDING) or running (RUNNING), by compute pool.",
            labels=["compute_pool", "state"],
        )
        for pool in sorted(pools):
            for state in _WAITING_OR_RUNNING:
                waiting.add_metric([pool, state.value], counts.get((pool, state.value), 0))
        yield waiting

        queue = GaugeMetricFamily(
            "runbatch_queue_messages",
            "Shard messages waiting in the compute pool's dispatch queue (absent where the dispatcher "
            "cannot tell).",
            labels=["compute_pool"],
        )
        for pool in sorted(pools):
            depth = cp.dispatcher.pending_messages(pool)
            if depth is not None:
                queue.add_metric([pool], depth)
        yield queue

        live = GaugeMetricFamily(
            "runbatch_workers", "Live workers serving the compute pool.", labels=["compute_pool"]
        )
        slots = GaugeMetricFamily(
            "runbatch_worker_slots",
            "Shards the compute pool's live workers can run at once.",
            labels=["compute_pool"],
        )
        for pool in sorted(pools):
            serving = [w for w in workers if pool in w.pools or "*" in w.pools]
            live.add_metric([pool], len(serving))
            slots.add_metric([pool], sum(w.slots for w in serving))
        yield live
        yield slots
