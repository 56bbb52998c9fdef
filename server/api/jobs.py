"""Jobs: submit, start (after an upload), list, get, cancel, delete, logs, shards."""

from __future__ import annotations

from fastapi import APIRouter, status

from runbatch.wire.jobs import JobCreate, JobPublic, JobsPublic, LogsPublic, QueryInput, ShardPublic
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.jobs import service as jobs
from server.jobs.finalize import finalize_soon
from server.jobs.query_input import materialize_soon
from server.sql.results import open_query

router = APIRouter(tags=["jobs"])

_JOB = "/databases/{database}/schemas/{schema}/jobs/{name}"


@router.post("/jobs", status_code=status.HTTP_201_CREATED)
def submit_job(body: JobCreate, session: SessionDep, cp: ControlPlaneDep, user: UserDep) -> JobPublic:
    """Validate and record a job. Stage input starts right away; uploaded input waits for ``start``;
    a query input starts once the control plane has written the query's rows (in the background)."""
    query = None
    try:
        with cp.read_sessionmaker() as reading:
            if isinstance(body.input, QueryInput):
                # Compiled first: a query error refuses the job before anything is recorded.
                query = open_query(
                    reading,
                    cp.storage,
                    cp.secrets,
                    body.input.sql,
                    database=body.database,
                    schema=body.schema_,
                )
            draft = jobs.prepare_job(
                reading, cp, user, body, query_schema=query.reader.schema if query is not None else None
            )
        job = jobs.record_job(session, cp, draft)
        due = jobs.mark_dispatched(job)
        session.commit()
    except BaseException:
        if query is not None:
            query.close()
        raise
    if query is not None:
        materialize_soon(cp, job.id, query)
    if due:
        cp.dispatcher.dispatch(job.compute_pool, due)
    return jobs.job_public(job)


@router.post(_JOB + "/start")
def start_job(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, _: UserDep
) -> JobPublic:
    """Plan and dispatch a job whose input the client has finished uploading to ``input_location``."""
    with cp.read_sessionmaker() as reading:
        files = jobs.uploaded_input(cp, jobs.get_job(reading, database, schema, name))
    job = jobs.get_job(session, database, schema, name)
    jobs.start_job(session, cp, job, files)
    due = jobs.mark_dispatched(job)
    session.commit()
    if due:
        cp.dispatcher.dispatch(job.compute_pool, due)
    return jobs.job_public(job)


@router.get("/jobs")
def list_jobs(
    session: SessionDep,
    _: UserDep,
    database: str | None = None,
    schema: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
    name: str | None = None,
) -> JobsPublic:
    """Newest first. ``limit <= 0`` means no limit; ``name`` finds a job without knowing its schema."""
    rows, total = jobs.list_jobs(
        session, database=database, schema=schema, status=status, limit=limit, offset=offset, name=name
    )
    return JobsPublic(data=[jobs.job_public(j) for j in rows], count=total)


@router.get(_JOB)
def get_job(database: str, schema: str, name: str, session: SessionDep, _: UserDep) -> JobPublic:
    return jobs.job_public(jobs.get_job(session, database, schema, name))


@router.post(_JOB + "/cancel")
def cancel_job(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, _: UserDep
) -> JobPublic:
    job = jobs.get_job(session, database, schema, name)
    jobs.cancel_job(session, job)
    session.commit()
    finalize_soon(cp, job.id)
    return jobs.job_public(job)


@router.delete(_JOB, status_code=status.HTTP_204_NO_CONTENT)
def delete_job(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, _: UserDep
) -> None:
    job = jobs.get_job(session, database, schema, name)
    ended = jobs.delete_job(session, job)
    session.commit()
    if not ended:
        finalize_soon(cp, job.id)


@router.get(_JOB + "/logs")
def get_logs(
    database: str,
    schema: str,
    name: str,
    session: SessionDep,
    _: UserDep,
    instance_id: int | None = None,
    limit: int = -1,
) -> LogsPublic:
    """Log lines of one instance (shard index) or of all; ``limit`` keeps the last lines (<= 0: all)."""
    job = jobs.get_job(session, database, schema, name)
    return LogsPublic(data=jobs.read_logs(session, job, instance_id=instance_id, limit=limit))


@router.get(_JOB + "/shards")
def list_shards(database: str, schema: str, name: str, session: SessionDep, _: UserDep) -> list[ShardPublic]:
    job = jobs.get_job(session, database, schema, name)
    return [jobs.shard_public(s) for s in job.shards]
