"""Run a job's input query on the control plane and stream its rows into the job's input folder.

``run_batch`` over a DataFrame built from tables or stage files sends the DataFrame's query,
not its rows: the control plane runs it with DuckDB (``server.sql.results``) and writes the
result as Parquet under ``<output>/_temporary/input``, one record batch at a time, then plans
the shards exactly as for uploaded input. Memory stays bounded by a row group, whatever the
result's size, and the rows never travel through the client.

This runs in the control plane's background pool after the job is recorded, so the submit
request returns at once. A failure fails the job with the query's error; a cancel stops the
writing at the next batch (the reaper then ends the job as for a cancelled upload).
"""

from __future__ import annotations

import logging
import uuid

import pyarrow as pa
import pyarrow.parquet as pq

from runbatch.errors import NotFoundError
from runbatch.stage.storage import Storage
from runbatch.wire.jobs import decode_schema
from server.control_plane import ControlPlane
from server.db.tables import JobRow, utcnow
from server.jobs import service as jobs
from server.jobs.states import JobPhase, JobStatus, transition_job, transition_phase
from server.sql.results import QueryResult

__all__ = ["materialize_soon"]

log = logging.getLogger(__name__)

_FILE_ROWS = 1_000_000  # rows per input file: shards split files, so this only bounds a file's size
_CANCEL_CHECK_BATCHES = 16


def materialize_soon(cp: ControlPlane, job_id: uuid.UUID, result: QueryResult) -> None:
    """Write ``result`` as the input of ``job_id`` (recorded, AWAITING_INPUT) in the background."""
    cp.background.submit(_materialize_logged, cp, job_id, result)


def _materialize_logged(cp: ControlPlane, job_id: uuid.UUID, result: QueryResult) -> None:
    try:
        _materialize(cp, job_id, result)
    except Exception as exc:
        log.exception("the input query of job %s failed", job_id)
        _fail(cp, job_id, f"The job's input query failed: {exc}")
    finally:
        result.close()


def _materialize(cp: ControlPlane, job_id: uuid.UUID, result: QueryResult) -> None:
    with cp.sessionmaker() as session:
        job = session.get(JobRow, job_id)
        if job is None:
            return
        input_key = job.spec["input_key"]
        schema = decode_schema(job.spec["input_schema"])
    written = _write(cp, job_id, cp.storage, input_key, result.reader, schema)
    if not written:
        return  # cancelled while writing
    with cp.read_sessionmaker() as reading:
        files = jobs.uploaded_input(cp, _job(reading.get(JobRow, job_id)))
    with cp.sessionmaker() as session:
        job = _job(session.get(JobRow, job_id))
        jobs.start_job(session, cp, job, files)
        due = jobs.mark_dispatched(job)
        session.commit()
        pool = job.compute_pool
    if due:
        cp.dispatcher.dispatch(pool, due)


def _write(
    cp: ControlPlane,
    job_id: uuid.UUID,
    storage: Storage,
    input_key: str,
    reader: pa.RecordBatchReader,
    schema: pa.Schema,
) -> bool:
    """Stream ``reader`` into Parquet files; False when the job was cancelled meanwhile."""
    index, rows_in_file, batches = 0, 0, 0
    writer: pq.ParquetWriter | None = None
    stream: pa.NativeFile | None = None

    def open_next() -> pq.ParquetWriter:
        nonlocal stream, index
        stream = storage.open_output_stream(f"{input_key}/input_{index:05d}.parquet")
        index += 1
        return pq.ParquetWriter(stream, schema, compression="snappy")

    def close() -> None:
        if writer is not None:
            writer.close()
        if stream is not None:
            stream.close()

    try:
        # One file even for an empty result, so the job plans zero rows and ends DONE.
        writer = open_next()
        for batch in reader:
            if batch.num_rows == 0:
                continue
            if rows_in_file >= _FILE_ROWS:
                close()
                writer, rows_in_file = open_next(), 0
            # DuckDB may widen a type between batches (e.g. VALUES); the declared schema is what shards expect.
            writer.write_batch(batch.cast(schema) if not batch.schema.equals(schema) else batch)
            rows_in_file += batch.num_rows
            batches += 1
            if batches % _CANCEL_CHECK_BATCHES == 0 and _cancelled(cp, job_id):
                return False
    finally:
        close()
    return not _cancelled(cp, job_id)


def _job(job: JobRow | None) -> JobRow:
    if job is None:
        raise NotFoundError("The job was deleted while its input query ran.")
    return job


def _cancelled(cp: ControlPlane, job_id: uuid.UUID) -> bool:
    with cp.read_sessionmaker() as reading:
        job = reading.get(JobRow, job_id)
        return job is None or job.status != JobStatus.PENDING or job.phase != JobPhase.AWAITING_INPUT


def _fail(cp: ControlPlane, job_id: uuid.UUID, message: str) -> None:
    with cp.sessionmaker() as session:
        job = session.get(JobRow, job_id)
        if job is None:
            return
        if job.phase != JobPhase.AWAITING_INPUT:
            return  # planned already: its shards decide its outcome
        # Only a job still pending fails here; a cancelled or deleted one is ended by the reaper.
        if transition_job(
            session,
            job_id,
            from_={JobStatus.PENDING},
            to=JobStatus.FAILED,
            message=message,
            finished_at=utcnow(),
        ):
            transition_phase(session, job_id, from_={JobPhase.AWAITING_INPUT}, to=JobPhase.FINISHED)
            temporary = job.spec["temporary_key"]
            session.commit()
            cp.storage.delete_tree(temporary)
