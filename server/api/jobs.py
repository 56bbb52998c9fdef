"""Jobs: submit, start (after an upload), list, get, cancel, delete, logs, shards."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from runbatch.errors import InvalidArgumentError
from runbatch.wire.jobs import (
    JobCreate,
    JobPublic,
    JobsPublic,
    LogLine,
    LogsPublic,
    QueryInput,
    ShardPublic,
)
from server import idempotency
from server.auth import privileges
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.jobs import service as jobs
from server.jobs.finalize import finalize_soon
from server.jobs.log_stream import follow_logs
from server.jobs.query_input import materialize_soon
from server.paging import PageCursor, decode_page_token, encode_page_token, filters_digest
from server.sql.results import open_query

router = APIRouter(tags=["jobs"])

_JOB = "/databases/{database}/schemas/{schema}/jobs/{name}"


@router.post("/jobs", status_code=status.HTTP_201_CREATED, summary="Submit a batch inference job")
def submit_job(
    body: JobCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
    idempotency_key: idempotency.KeyHeader = None,
) -> JobPublic:
    """Validate and record a job. Stage input starts right away; uploaded input waits for ``start``;
    a query input starts once the control plane has written the query's rows (in the background)."""
    with cp.read_sessionmaker() as reading:
        privileges.require_job_submit(reading, user, body)
    reservation = idempotency.reserve_request(
        cp.sessionmaker, request, response, user, idempotency_key, body.model_dump(mode="json", by_alias=True)
    )
    if reservation is not None and reservation.replay is not None:
        return JobPublic.model_validate(reservation.replay)
    query = None
    with idempotency.answering(session, cp.sessionmaker, reservation) as answer:
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
            public = jobs.job_public(job)
            answer(201, public.model_dump(mode="json"))
            session.commit()
        except BaseException:
            if query is not None:
                query.close()
            raise
    if query is not None:
        materialize_soon(cp, job.id, query)
    if due:
        cp.dispatcher.dispatch(job.compute_pool, due)
    return public


@router.post(_JOB + "/start")
def start_job(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> JobPublic:
    """Plan and dispatch a job whose input the client has finished uploading to ``input_location``."""
    with cp.read_sessionmaker() as reading:
        files = jobs.uploaded_input(
            cp, privileges.require_job(user, jobs.get_job(reading, database, schema, name))
        )
    job = jobs.get_job(session, database, schema, name)
    jobs.start_job(session, cp, job, files)
    due = jobs.mark_dispatched(job)
    session.commit()
    if due:
        cp.dispatcher.dispatch(job.compute_pool, due)
    return jobs.job_public(job)


@router.get("/jobs", summary="List jobs, newest first, with filters and stable pages")
def list_jobs(
    session: SessionDep,
    user: UserDep,
    database: str | None = None,
    schema: str | None = None,
    status: Annotated[
        list[str] | None,
        Query(description="Only these statuses; repeat the parameter or separate with commas (DONE,FAILED)"),
    ] = None,
    limit: Annotated[int, Query(description="Page size; <= 0 means all (then no next_page_token)")] = 100,
    offset: Annotated[
        int, Query(ge=0, description="Deprecated: skips rows; use page_token (offset pages shift)")
    ] = 0,
    name: Annotated[str | None, Query(description="Exact job name, to find a job without its schema")] = None,
    search: Annotated[str | None, Query(description="Case-insensitive substring of the job name")] = None,
    compute_pool: Annotated[
        str | None, Query(alias="pool", description="Only jobs on this compute pool")
    ] = None,
    owner: Annotated[str | None, Query(description="Only jobs created by this user")] = None,
    created_after: Annotated[datetime | None, Query(description="ISO 8601 with a time zone")] = None,
    created_before: Annotated[datetime | None, Query(description="ISO 8601 with a time zone")] = None,
    page_token: Annotated[str | None, Query(description="next_page_token of the previous page")] = None,
) -> JobsPublic:
    """Newest first (created_at, then uuid). Page with ``limit`` and ``page_token``: jobs created while
    paging never shift or repeat later pages. ``count`` is the number of matching jobs in all."""
    for bound, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise InvalidArgumentError(f"{bound} needs a time zone, e.g. 2026-11-22T05:00:00Z.")
    if page_token is not None and offset:
        raise InvalidArgumentError("Give page_token or offset, not both; page_token pages are stable.")
    statuses = tuple(sorted({s.strip().upper() for v in status or [] for s in v.split(",") if s.strip()}))
    filters = jobs.JobFilters(
        database=database,
        schema=schema,
        statuses=statuses,
        name=name,
        search=search or None,
        compute_pool=compute_pool,
        # Without ACCOUNTADMIN a caller sees its own jobs only.
        owner=owner if user.is_admin else user.name,
        created_after=created_after,
        created_before=created_before,
    )
    digest = filters_digest(asdict(filters))
    after = decode_page_token(page_token, digest) if page_token is not None else None
    # One row more than the page tells whether another page follows.
    rows, total = jobs.list_jobs(
        session,
        database=None,
        schema=None,
        status=None,
        limit=limit + 1 if limit > 0 else 0,
        offset=offset,
        filters=filters,
        after=after,
    )
    next_token = None
    if limit > 0 and len(rows) > limit:
        rows = rows[:limit]
        next_token = encode_page_token(PageCursor(created_at=rows[-1].created_at, id=rows[-1].id), digest)
    return JobsPublic(data=[jobs.job_public(j) for j in rows], count=total, next_page_token=next_token)


@router.get(_JOB)
def get_job(database: str, schema: str, name: str, session: SessionDep, user: UserDep) -> JobPublic:
    return jobs.job_public(privileges.require_job(user, jobs.get_job(session, database, schema, name)))


@router.post(_JOB + "/cancel")
def cancel_job(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> JobPublic:
    job = privileges.require_job(user, jobs.get_job(session, database, schema, name))
    jobs.cancel_job(session, job)
    session.commit()
    finalize_soon(cp, job.id)
    return jobs.job_public(job)


@router.delete(_JOB, status_code=status.HTTP_204_NO_CONTENT)
def delete_job(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> None:
    job = privileges.require_job(user, jobs.get_job(session, database, schema, name))
    ended = jobs.delete_job(session, job)
    session.commit()
    if not ended:
        finalize_soon(cp, job.id)


@router.get(
    _JOB + "/logs",
    summary="A job's log lines; with follow=true, streamed until the job ends",
    response_model=LogsPublic,
    responses={200: {"content": {"application/x-ndjson": {"schema": LogLine.model_json_schema()}}}},
)
def get_logs(
    database: str,
    schema: str,
    name: str,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
    instance_id: int | None = None,
    limit: int = -1,
    follow: Annotated[
        bool,
        Query(description="Stream NDJSON (one LogLine a line, blank keep-alive lines) until the job ends"),
    ] = False,
) -> LogsPublic | StreamingResponse:
    """Log lines of one instance (shard index) or of all; ``limit`` keeps the last lines (<= 0: all).
    With ``follow=true`` the answer is ``application/x-ndjson``: those lines, then each new line as it
    arrives; the stream ends once the job has ended and its last lines are sent."""
    job = privileges.require_job(user, jobs.get_job(session, database, schema, name))
    if follow:
        lines = follow_logs(cp, job.id, instance_id=instance_id, limit=limit)
        return StreamingResponse(lines, media_type="application/x-ndjson")
    return LogsPublic(data=jobs.read_logs(session, job, instance_id=instance_id, limit=limit))


@router.get(_JOB + "/shards")
def list_shards(
    database: str, schema: str, name: str, session: SessionDep, user: UserDep
) -> list[ShardPublic]:
    job = privileges.require_job(user, jobs.get_job(session, database, schema, name))
    return [jobs.shard_public(s) for s in job.shards]
