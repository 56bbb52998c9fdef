"""Registered workers. A worker is live while its heartbeat is fresh."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.compute import parse_cpu, parse_gpu, parse_memory
from runbatch.errors import InvalidArgumentError, NotFoundError
from runbatch.ml.model.batch import JobSpec
from runbatch.wire.workers import WorkerPublic, WorkerRegister
from server.db.tables import WorkerRow, utcnow

__all__ = ["check_capacity", "heartbeat", "live_workers", "register", "stop", "worker_public"]


def register(session: Session, body: WorkerRegister) -> WorkerRow:
    row = WorkerRow(**body.model_dump())
    session.add(row)
    session.flush()
    return row


def _get(session: Session, worker_id: uuid.UUID) -> WorkerRow:
    row = session.get(WorkerRow, worker_id)
    if row is None:
        raise NotFoundError(f"Worker {worker_id} is not registered.")
    return row


def heartbeat(session: Session, worker_id: uuid.UUID) -> WorkerRow:
    row = _get(session, worker_id)
    row.heartbeat_at = utcnow()
    row.stopped_at = None
    session.flush()
    return row


def stop(session: Session, worker_id: uuid.UUID) -> None:
    _get(session, worker_id).stopped_at = utcnow()
    session.flush()


def is_live(row: WorkerRow, timeout_s: float) -> bool:
    return row.stopped_at is None and row.heartbeat_at > utcnow() - timedelta(seconds=timeout_s)


def live_workers(session: Session, timeout_s: float, pool: str | None = None) -> list[WorkerRow]:
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    rows = session.scalars(
        select(WorkerRow)
        .where(WorkerRow.stopped_at.is_(None), WorkerRow.heartbeat_at > cutoff)
        .order_by(WorkerRow.name)
    )
    return [r for r in rows if pool is None or pool in r.pools or "*" in r.pools]


def worker_public(row: WorkerRow, timeout_s: float) -> WorkerPublic:
    return WorkerPublic(
        id=row.id,
        name=row.name,
        host=row.host,
        pools=list(row.pools),
        executor=row.executor,
        slots=row.slots,
        cpus=row.cpus,
        memory_bytes=row.memory_bytes,
        gpus=row.gpus,
        started_at=row.started_at,
        heartbeat_at=row.heartbeat_at,
        live=is_live(row, timeout_s),
    )


def check_capacity(workers: list[WorkerRow], pool: str, job_spec: JobSpec) -> None:
    """Fail fast when live workers serve the pool but none of them is big enough for one shard."""
    if not workers:
        return
    cpu = parse_cpu(job_spec.cpu_requests) if job_spec.cpu_requests else 0.0
    memory = parse_memory(job_spec.memory_requests) if job_spec.memory_requests else 0
    gpu = parse_gpu(job_spec.gpu_requests) if job_spec.gpu_requests else 0
    if any(w.cpus >= cpu and w.memory_bytes >= memory and w.gpus >= gpu for w in workers):
        return
    biggest = max(workers, key=lambda w: (w.gpus, w.cpus, w.memory_bytes))
    raise InvalidArgumentError(
        f"No worker of compute pool {pool} can run this job: each shard requests cpu={cpu:g}, "
        f"memory={memory / 2**30:.1f}GiB, gpu={gpu}, and the largest live worker ({biggest.name}) has "
        f"cpus={biggest.cpus}, memory={biggest.memory_bytes / 2**30:.1f}GiB, gpus={biggest.gpus}. Lower the "
        "requests in JobSpec or add a bigger worker to the pool."
    )
