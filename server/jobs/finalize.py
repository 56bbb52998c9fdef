"""Finalization: once every shard has ended, commit the output (or clean up) exactly once.

Winning the compare-and-set on the phase (-> FINALIZING) decides who finalizes. The storage
steps are idempotent, so the reaper can resume a finalization whose process died half way.
DONE writes the data files, then ``_manifest.json``, then ``_SUCCESS`` last; every other end
removes ``_temporary/`` and never writes ``_SUCCESS``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from runbatch.log_format import log_context
from runbatch.stage.storage import Storage
from server.control_plane import ControlPlane
from server.db.tables import JobLogRow, JobRow, utcnow
from server.jobs import failed_rows
from server.jobs.states import (
    JOB_TRANSITIONS,
    TERMINAL_JOB_STATUSES,
    TERMINAL_SHARD_STATES,
    JobPhase,
    JobStatus,
    ShardState,
    transition_job,
    transition_phase,
)

__all__ = ["finalize", "finalize_soon", "ready_to_finalize"]

log = logging.getLogger("runbatch.server.finalize")

SUCCESS_FILE = "_SUCCESS"
MANIFEST_FILE = "_manifest.json"
_COMMIT_ATTEMPTS = 3
_COMMIT_BACKOFF_S = 1.0


def ready_to_finalize(job: JobRow) -> bool:
    if job.phase in (JobPhase.FINALIZING, JobPhase.FINISHED, JobPhase.AWAITING_INPUT) and not (
        job.phase == JobPhase.AWAITING_INPUT and job.status == JobStatus.CANCELLING
    ):
        return False
    return all(s.state in TERMINAL_SHARD_STATES and s.finished_at is not None for s in job.shards)


def finalize_soon(cp: ControlPlane, job_id: uuid.UUID, *, resume: bool = False) -> None:
    """Finalize in the background (requests must not wait for storage renames)."""
    cp.background.submit(_finalize_logged, cp, job_id, resume)


def _finalize_logged(cp: ControlPlane, job_id: uuid.UUID, resume: bool) -> None:
    try:
        finalize(cp, job_id, resume=resume)
    except Exception:
        log.exception(
            "finalization of job %s crashed; the reaper will resume it", job_id, extra=log_context(job=job_id)
        )


def finalize(cp: ControlPlane, job_id: uuid.UUID, *, resume: bool = False) -> None:
    """Finalize a job whose shards have all ended. A no-op unless this call wins the phase."""
    with cp.finalizing_lock:
        if job_id in cp.finalizing:
            return
        cp.finalizing.add(job_id)
    try:
        _finalize(cp, job_id, resume)
    finally:
        with cp.finalizing_lock:
            cp.finalizing.discard(job_id)


def _finalize(cp: ControlPlane, job_id: uuid.UUID, resume: bool) -> None:
    with cp.sessionmaker() as session:
        job = session.get(JobRow, job_id)
        if job is None:
            return
        if resume:
            if job.phase != JobPhase.FINALIZING:
                return
        else:
            if not ready_to_finalize(job):
                return
            won = transition_phase(
                session,
                job.id,
                from_={JobPhase.QUEUED, JobPhase.RUNNING, JobPhase.FAILING, JobPhase.AWAITING_INPUT},
                to=JobPhase.FINALIZING,
            )
            session.commit()
            if not won:
                return
            session.refresh(job)
        outcome, message = _outcome(job)
        spec = job.spec
        job_name = job.name
        shards = [(s.index, s.rows_done, list(s.output_files)) for s in job.shards]
        rows_total = job.rows_total
    try:
        if outcome == JobStatus.DONE:
            _with_retries(lambda: _commit_output(cp.storage, spec, job_name, shards, rows_total), job_name)
    except Exception as exc:  # storage failures end the job; they must not leave it FINALIZING forever
        log.exception("finalizing job %s failed", job_id, extra=log_context(job=job_id, job_name=job_name))
        outcome, message = JobStatus.INTERNAL_ERROR, f"Committing the output failed: {exc}"
    finally:
        try:
            cp.storage.delete_tree(spec["temporary_key"])
        except Exception:  # leftovers under _temporary/ are never read; the outcome stands
            log.exception("removing %s of job %s failed", spec["temporary_key"], job_id)
    with cp.sessionmaker() as session:
        _end(session, job_id, outcome, message)
        session.commit()
    log.info("job %s finalized: %s", job_name, outcome, extra=log_context(job=job_id, job_name=job_name))


def _with_retries(step: Callable[[], None], job_name: str) -> None:
    # Every commit step is idempotent, so a transient storage error is retried from the top.
    for attempt in range(1, _COMMIT_ATTEMPTS + 1):
        try:
            step()
            return
        except (OSError, ConnectionError) as exc:
            if attempt == _COMMIT_ATTEMPTS:
                raise
            log.warning("committing the output of job %s failed (%s); retrying", job_name, exc)
            time.sleep(_COMMIT_BACKOFF_S * attempt)


def _outcome(job: JobRow) -> tuple[JobStatus, str]:
    states = [s.state for s in job.shards]
    # A cancel or delete that came after every shard had succeeded changes nothing: the output
    # is committed either way (a deleted job then ends DELETED, see _end), however the
    # finalizer and the cancel interleaved, and whether or not the finalization was resumed.
    all_done = bool(states) and all(state == ShardState.DONE for state in states)
    if job.deleted_at is not None and not all_done:
        return JobStatus.DELETED, job.message
    # A job that had already failed keeps its failure's reason when it is cancelled afterwards.
    if ShardState.FAILED in states or job.phase == JobPhase.FAILING:
        failed = next((s for s in job.shards if s.state == ShardState.FAILED), None)
        return JobStatus.FAILED, job.message or (failed.message if failed else "A shard failed.")
    if job.status == JobStatus.CANCELLING and not all_done:
        return JobStatus.CANCELLED, "Job was cancelled."
    done_rows = sum(s.rows_done for s in job.shards)
    if job.rows_total is not None and done_rows != job.rows_total:
        return JobStatus.INTERNAL_ERROR, (
            f"Shards processed {done_rows} of {job.rows_total} input rows; the output was not committed."
        )
    too_many = failed_rows.threshold_exceeded(job)
    if too_many is not None:
        return JobStatus.FAILED, too_many
    return JobStatus.DONE, ""


def _commit_output(
    storage: Storage,
    spec: dict[str, Any],
    job_name: str,
    shards: list[tuple[int, int, list[Any]]],
    rows_total: int | None,
) -> None:
    out = spec["output_key"]
    manifest_files = []
    error_files = []
    for index, _, files in sorted(shards):
        own = f"{spec['temporary_key']}/shards/{index:05d}/"
        data = [f for f in files if f.get("kind", "data") == "data"]
        errors = [f for f in files if f.get("kind") == "errors"]
        for seq, f in enumerate(errors):
            error_files.append(_commit_error_file(storage, f, own, out, index, seq))
        for seq, f in enumerate(data):
            if not f["key"].startswith(own):  # complete() refuses these; never move a foreign key
                raise ValueError(f"output file {f['key']} of shard {index} is outside {own}")
            dst = f"{out}/part-{index:05d}-{seq:05d}.parquet"
            if storage.exists(f["key"]):
                storage.move(f["key"], dst)
            elif not storage.exists(dst):
                raise FileNotFoundError(f"output file {f['key']} of shard {index} is missing")
            manifest_files.append(
                {"path": dst[len(out) + 1 :], "rows": f["rows"], "bytes": f["bytes"], "shard": index}
            )
    manifest = {
        "job": job_name,
        # Output rows: a partitioned function may return more or fewer rows than it was given.
        "rows": sum(f["rows"] for f in manifest_files),
        "input_rows": rows_total,
        "files": manifest_files,
        # runbatch's error rows (not in Snowflake): input rows that failed, under _errors/.
        "failed_rows": sum(f["rows"] for f in error_files),
        "error_files": error_files,
        "committed_at": utcnow().isoformat(),
    }
    storage.write_bytes(f"{out}/{MANIFEST_FILE}", json.dumps(manifest, indent=2).encode())
    storage.write_bytes(f"{out}/{SUCCESS_FILE}", b"")


def _commit_error_file(
    storage: Storage, f: dict[str, Any], own: str, out: str, index: int, seq: int
) -> dict[str, Any]:
    """Move one error file of a shard under ``<out>/_errors/`` (idempotent, as a resumed finalization needs)."""
    if not f["key"].startswith(own):  # complete() refuses these; never move a foreign key
        raise ValueError(f"output file {f['key']} of shard {index} is outside {own}")
    dst = f"{out}/{failed_rows.ERRORS_FOLDER}/part-{index:05d}-{seq:05d}.parquet"
    if storage.exists(f["key"]):
        storage.move(f["key"], dst)
    elif not storage.exists(dst):
        raise FileNotFoundError(f"output file {f['key']} of shard {index} is missing")
    return {"path": dst[len(out) + 1 :], "rows": f["rows"], "bytes": f["bytes"], "shard": index}


def _end(session: Session, job_id: uuid.UUID, outcome: JobStatus, message: str) -> None:
    job = session.get(JobRow, job_id)
    if job is None:
        return
    if job.deleted_at is not None and outcome != JobStatus.DELETED:
        # Deleted while finalizing: the output stands (deleting a job never deletes its output).
        outcome = JobStatus.DELETED
    sources = {
        s for s, targets in JOB_TRANSITIONS.items() if outcome in targets and s not in TERMINAL_JOB_STATUSES
    }
    if not transition_job(session, job_id, from_=sources, to=outcome, message=message, finished_at=utcnow()):
        log.error("job %s could not end as %s: it is already %s", job_id, outcome, job.status)
    if outcome == JobStatus.DELETED:
        session.execute(delete(JobLogRow).where(JobLogRow.job_id == job_id))
    transition_phase(session, job_id, from_={JobPhase.FINALIZING}, to=JobPhase.FINISHED)
