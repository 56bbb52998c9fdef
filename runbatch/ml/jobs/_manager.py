"""list_jobs, get_job and delete_job, as ``snowflake.ml.jobs``."""

from __future__ import annotations

from typing import Any

import pandas as pd

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import format_identifier, resolve_identifier, split_identifiers
from runbatch.ml.jobs._job import MLJob
from runbatch.snowpark.session import Session, get_active_session

__all__ = ["delete_job", "get_job", "list_jobs"]

LIST_JOBS_COLUMNS = [
    "name",
    "status",
    "message",
    "database_name",
    "schema_name",
    "owner",
    "compute_pool",
    "target_instances",
    "created_time",
    "completed_time",
]


def list_jobs(
    limit: int = 10, database: str | None = None, schema: str | None = None, session: Session | None = None
) -> pd.DataFrame:
    """Jobs of the current (or given) schema, newest first. ``limit <= 0`` means all."""
    session = session or get_active_session()
    conn = session._conn
    db = resolve_identifier(database) if database else conn.database
    sch = resolve_identifier(schema) if schema else conn.schema
    page = conn.client.list_jobs(database=db, schema=sch, limit=limit)
    rows: list[dict[str, Any]] = [
        {
            "name": j.name,
            "status": j.status,
            "message": j.message,
            "database_name": j.database_name,
            "schema_name": j.schema_name,
            "owner": j.owner,
            "compute_pool": j.compute_pool,
            "target_instances": j.replicas,
            "created_time": j.created_at,
            "completed_time": j.finished_at,
        }
        for j in page.data
    ]
    return pd.DataFrame(rows, columns=LIST_JOBS_COLUMNS)


def get_job(job_id: str, session: Session | None = None) -> MLJob[Any]:
    """A job by ``[[db.]schema.]name``; db and schema default to the session's."""
    session = session or get_active_session()
    conn = session._conn
    try:
        parts = split_identifiers(job_id)
        if not 1 <= len(parts) <= 3:
            raise ValueError
        resolved = [resolve_identifier(p) for p in parts]
    except ValueError:
        raise InvalidArgumentError(f"Invalid job ID: {job_id}") from None
    name = resolved[-1]
    sch = resolved[-2] if len(resolved) >= 2 else conn.schema
    db = resolved[-3] if len(resolved) == 3 else conn.database
    if db is None or sch is None:
        raise InvalidArgumentError(f"Invalid job ID: {job_id} (no current database/schema to qualify it)")
    conn.client.get_job(db, sch, name)  # raises NotFoundError("... does not exist or not authorized.")
    fq = ".".join(format_identifier(p) for p in (db, sch, name))
    return MLJob(fq, session=session)


def delete_job(job: str | MLJob[Any], session: Session | None = None) -> None:
    """Delete a job (a running one is cancelled). Its status and logs are gone afterwards."""
    handle = job if isinstance(job, MLJob) else get_job(job, session=session)
    handle._session._conn.client.delete_job(handle._database, handle._schema, handle._name)
