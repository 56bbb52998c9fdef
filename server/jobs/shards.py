"""The shard protocol between the control plane and workers/runtimes: claim, beat, finish."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from runbatch.errors import ConflictError, InvalidArgumentError, NotFoundError, StagePathError
from runbatch.ml.model.batch import JobSpec
from runbatch.stage.paths import normalize_key
from runbatch.wire.jobs import InputSlice, OutputFile, ShardWork
from server.auth.tokens import hash_secret, new_shard_secret
from server.control_plane import ControlPlane
from server.db.tables import JobRow, ShardRow, utcnow
from server.jobs import file_stages
from server.jobs.states import (
    JobPhase,
    JobStatus,
    ShardState,
    transition_job,
    transition_phase,
    transition_shard,
)
from server.stages import service as stages

__all__ = [
    "attempt_output_prefix",
    "build_work",
    "claim",
    "complete",
    "exit_reported",
    "fail",
    "get_shard",
    "heartbeat",
    "retry_backoff",
]


def get_shard(session: Session, shard_id: uuid.UUID) -> ShardRow:
    shard = session.get(ShardRow, shard_id)
    if shard is None:
        raise NotFoundError(f"Shard {shard_id} does not exist.")
    return shard


def _job_stopping(job: JobRow) -> bool:
    return job.status not in (JobStatus.PENDING, JobStatus.RUNNING) or job.phase == JobPhase.FAILING


def claim(session: Session, shard_id: uuid.UUID, worker: str) -> tuple[ShardRow, str]:
    """Win the shard for ``worker`` before anything starts; a redelivered task loses here."""
    shard = get_shard(session, shard_id)
    job = shard.job
    if shard.state == ShardState.PENDING and _job_stopping(job):
        transition_shard(
            session, shard.id, from_={ShardState.PENDING}, to=ShardState.CANCELLED, finished_at=utcnow()
        )
        session.flush()
        raise ConflictError(
            f"Shard {shard.index} of job {job.name} was not started: the job is {job.status}."
        )
    if shard.not_before is not None and shard.not_before > utcnow():
        raise ConflictError(
            f"Shard {shard.index} of job {job.name} is waiting to retry until {shard.not_before}."
        )
    secret = new_shard_secret()
    now = utcnow()
    won = transition_shard(
        session,
        shard.id,
        from_={ShardState.PENDING},
        to=ShardState.RUNNING,
        on_attempt=shard.attempt,
        attempt=shard.attempt + 1,
        worker=worker,
        token_hash=hash_secret(secret),
        heartbeat_at=now,
        started_at=now,
        not_before=None,
    )
    if not won:
        raise ConflictError(f"Shard {shard.index} of job {job.name} is already {shard.state}; nothing to do.")
    if transition_job(
        session, job.id, from_={JobStatus.PENDING}, to=JobStatus.RUNNING, started_at=now, message=""
    ):
        transition_phase(session, job.id, from_={JobPhase.QUEUED}, to=JobPhase.RUNNING)
    session.flush()
    session.refresh(shard)
    session.refresh(job)
    return shard, secret


def attempt_output_prefix(spec: dict[str, Any], index: int, attempt: int) -> str:
    """Where one shard attempt writes: the only keys its ``/complete`` may name."""
    return f"{spec['temporary_key']}/shards/{index:05d}/{attempt}"


def build_work(session: Session, cp: ControlPlane, shard: ShardRow) -> ShardWork:
    """The work order of a shard's current attempt (it carries storage credentials: reveal it only to the runtime)."""
    job = shard.job
    spec = job.spec
    job_spec = JobSpec.model_validate(spec["request"]["job_spec"])
    env = spec["model"].get("env") or {}
    storage = cp.storage.config
    input_storage = storage
    if spec.get("input_stage"):
        ref = spec["input_stage"]
        row = stages.get_stage(session, ref["database"], ref["schema"], ref["stage"])
        input_storage = stages.stage_storage(row, cp.storage, cp.secrets)[0].config
    return ShardWork(
        shard_id=shard.id,
        job_id=job.id,
        job_name=job.name,
        index=shard.index,
        attempt=shard.attempt,
        replicas=len(job.shards),
        model_name=job.model_name,
        version_name=job.version_name,
        model_storage=storage,
        model_key=spec["model"]["artifact_key"],
        function_name=spec["function"]["target_method"],
        signature=spec["function"]["signature"],
        function_type=spec["function"]["function_type"],
        feature_columns=spec["feature_columns"],
        input_storage=input_storage,
        slices=[InputSlice.model_validate(s) for s in shard.slices],
        output_storage=storage,
        output_prefix=attempt_output_prefix(spec, shard.index, shard.attempt),
        params=spec["params"],
        column_handling=spec["column_handling"],
        partition_column=spec.get("partition_column"),
        max_batch_rows=job_spec.max_batch_rows,
        num_workers=job_spec.num_workers,
        cpu_requests=job_spec.cpu_requests,
        memory_requests=job_spec.memory_requests,
        gpu_requests=job_spec.gpu_requests,
        pip_requirements=list(env.get("pip_requirements") or []),
        conda_dependencies=list(env.get("conda_dependencies") or []),
        python_version=env.get("python_version"),
        force_rebuild=job_spec.force_rebuild,
        image_repo=job_spec.image_repo,
        default_database=(spec.get("context") or {}).get("database"),
        default_schema=(spec.get("context") or {}).get("schema"),
        file_stages=file_stages.work_file_stages(session, cp, spec),
        fail_fast=job_spec.fail_fast,
        max_failed_rows=job_spec.max_failed_rows,
        inference_engine=spec.get("engine"),
    )


def heartbeat(
    session: Session,
    shard_id: uuid.UUID,
    attempt: int,
    *,
    rows_done: int | None = None,
    rows_failed: int | None = None,
) -> bool:
    """Record liveness (and progress); True tells the caller to stop the shard."""
    shard = get_shard(session, shard_id)
    if shard.attempt != attempt:
        return True  # superseded by a newer attempt
    if shard.state != ShardState.RUNNING:
        # Ended by its own runtime's report (which is now exiting): nothing to stop. A shard
        # cancelled or failed by someone else must stop.
        return shard.finished_at is not None
    shard.heartbeat_at = utcnow()
    if rows_done is not None:
        shard.rows_done = rows_done
    if rows_failed is not None:
        shard.rows_failed = rows_failed
    session.flush()
    return _job_stopping(shard.job)


def complete(
    session: Session,
    shard_id: uuid.UUID,
    attempt: int,
    files: list[OutputFile],
    rows_done: int,
    rows_failed: int,
) -> ShardRow:
    shard = get_shard(session, shard_id)
    if shard.state == ShardState.DONE and shard.attempt == attempt:
        return shard  # a retried request whose first try got through
    prefix = attempt_output_prefix(shard.job.spec, shard.index, attempt) + "/"
    for f in files:
        try:
            inside = normalize_key(f.key, what="output file").startswith(prefix)
        except StagePathError:
            inside = False
        if not inside or f.key != normalize_key(f.key):
            # The token lives in the runtime, next to user code: finalization moves these keys,
            # so a key outside the attempt's own folder could move any file of any stage.
            raise InvalidArgumentError(
                f"Output file {f.key!r} is outside shard {shard.index}'s output folder {prefix!r}."
            )
    won = transition_shard(
        session,
        shard.id,
        from_={ShardState.RUNNING},
        to=ShardState.DONE,
        on_attempt=attempt,
        heartbeat_at=utcnow(),  # finished_at waits for the worker's exit report (last logs shipped)
        output_files=[f.model_dump() for f in files],
        rows_done=rows_done,
        rows_failed=rows_failed,
        message="",
    )
    if not won:
        raise ConflictError(
            f"Attempt {attempt} of shard {shard.index} is no longer current (the shard is {shard.state}, attempt "
            f"{shard.attempt}); its output is discarded."
        )
    session.flush()
    session.refresh(shard)
    return shard


def retry_backoff(attempt: int) -> timedelta:
    return timedelta(seconds=min(30.0, 0.5 * 2 ** (attempt - 1)))


def fail(
    session: Session, shard_id: uuid.UUID, attempt: int, message: str, *, retryable: bool, ended: bool = True
) -> ShardRow:
    """End a shard attempt that did not succeed: retry crashes while attempts remain, else fail the job.

    ``ended`` is False when the runtime reports its own failure: its worker still has log lines
    to ship, so the shard counts as finished only when the worker reports the exit.
    """
    shard = get_shard(session, shard_id)
    job = shard.job
    now = utcnow()
    finished_at = now if ended else None
    # A runtime reporting its own end keeps its token until its worker reports the exit, so a
    # retry of a request whose response was lost still authenticates.
    revoke: dict[str, Any] = {"token_hash": None} if ended else {}
    if shard.state != ShardState.RUNNING or shard.attempt != attempt:
        return shard
    if job.status == JobStatus.CANCELLING or job.phase == JobPhase.FAILING:
        reason = "cancelled" if job.status == JobStatus.CANCELLING else "stopped: another shard failed"
        transition_shard(
            session,
            shard.id,
            from_={ShardState.RUNNING},
            to=ShardState.CANCELLED,
            on_attempt=attempt,
            finished_at=finished_at,
            heartbeat_at=now,
            message=reason,
            **revoke,
        )
    elif retryable and attempt < shard.max_attempts and not _job_stopping(job):
        transition_shard(
            session,
            shard.id,
            from_={ShardState.RUNNING},
            to=ShardState.PENDING,
            on_attempt=attempt,
            worker=None,
            token_hash=None,
            not_before=now + retry_backoff(attempt),
            rows_done=0,
            rows_failed=0,
            message=f"Attempt {attempt} failed: {message} Retrying ({attempt}/{shard.max_attempts} attempts used).",
        )
    else:
        transition_shard(
            session,
            shard.id,
            from_={ShardState.RUNNING},
            to=ShardState.FAILED,
            on_attempt=attempt,
            finished_at=finished_at,
            heartbeat_at=now,
            message=message,
            **revoke,
        )
        _fail_job(
            session, job, f"Shard {shard.index} failed (attempt {attempt}/{shard.max_attempts}): {message}"
        )
    session.flush()
    session.refresh(shard)
    return shard


def exit_reported(
    session: Session, shard_id: uuid.UUID, attempt: int, message: str, *, retryable: bool
) -> ShardRow:
    """The worker saw the runtime exit: end a still-running attempt, or mark a reported end finished."""
    shard = get_shard(session, shard_id)
    if shard.attempt != attempt:
        return shard
    if shard.state == ShardState.RUNNING:
        return fail(session, shard_id, attempt, message, retryable=retryable)
    if shard.finished_at is None and shard.state in (
        ShardState.DONE,
        ShardState.FAILED,
        ShardState.CANCELLED,
    ):
        shard.finished_at = utcnow()
        shard.token_hash = None
        session.flush()
    return shard


def _fail_job(session: Session, job: JobRow, message: str) -> None:
    """First permanent failure: remember why, stop the other shards; finalization marks it FAILED."""
    if transition_phase(
        session, job.id, from_={JobPhase.QUEUED, JobPhase.RUNNING}, to=JobPhase.FAILING, message=message
    ):
        for other in job.shards:
            if other.state == ShardState.PENDING:
                transition_shard(
                    session,
                    other.id,
                    from_={ShardState.PENDING},
                    to=ShardState.CANCELLED,
                    finished_at=utcnow(),
                    message="not run: another shard failed",
                )
