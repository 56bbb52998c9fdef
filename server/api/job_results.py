"""What a job wrote: its output files (and whether ``_SUCCESS`` is there) and a sample of its error rows."""

from __future__ import annotations

import base64
import math
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

import pyarrow.parquet as pq
from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from runbatch.stage.paths import parse_stage_path
from runbatch.wire.jobs import JobErrorsPublic, JobOutputFile, JobOutputsPublic
from server.auth import privileges
from server.control_plane import ControlPlane
from server.db.tables import JobRow
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.errors import ERROR_RESPONSES
from server.jobs import service as jobs
from server.jobs.failed_rows import ERRORS_FOLDER
from server.jobs.finalize import SUCCESS_FILE
from server.stages import service as stages
from server.stages.service import ResolvedStage

__all__ = ["router"]

router = APIRouter(tags=["jobs"], responses=ERROR_RESPONSES)

_JOB = "/databases/{database}/schemas/{schema}/jobs/{name}"
_MAX_ERROR_ROWS = 1000


def _output(session: Session, cp: ControlPlane, job: JobRow) -> tuple[ResolvedStage, list[JobOutputFile]]:
    resolved = stages.resolve_stage_path(
        session, cp.storage, parse_stage_path(job.output_location), cp.secrets
    )
    prefix = resolved.key + "/"
    files = []
    for entry in resolved.storage.list(prefix):
        rel = entry.key[len(prefix) :]
        # _temporary/ holds attempts still being written; only committed files are the output.
        if rel.startswith("_temporary/") or ".__tmp_" in rel:
            continue
        files.append(JobOutputFile(path=rel, size=entry.size, last_modified=entry.last_modified))
    return resolved, sorted(files, key=lambda f: f.path)


@router.get(_JOB + "/outputs", summary="List a job's output files")
def job_outputs(
    database: str, schema: str, name: str, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> JobOutputsPublic:
    """The committed files under the job's output location, with sizes; ``success`` tells whether
    ``_SUCCESS`` exists (written last, only when the job ends DONE)."""
    job = privileges.require_job(user, jobs.get_job(session, database, schema, name))
    files = _output(session, cp, job)[1]
    return JobOutputsPublic(
        location=job.output_location,
        success=any(f.path == SUCCESS_FILE for f in files),
        files=files,
        total_bytes=sum(f.size for f in files),
    )


@router.get(_JOB + "/errors", summary="A sample of a job's failed rows")
def job_errors(
    database: str,
    schema: str,
    name: str,
    session: SessionDep,
    cp: ControlPlaneDep,
    user: UserDep,
    limit: Annotated[int, Query(ge=1, le=_MAX_ERROR_ROWS, description="At most this many rows")] = 100,
) -> JobErrorsPublic:
    """The first ``limit`` rows of the files under ``<output>/_errors/`` (the rows that failed, with
    the error of each), as JSON objects. Empty while the job runs: error files are committed at its end."""
    job = privileges.require_job(user, jobs.get_job(session, database, schema, name))
    resolved, files = _output(session, cp, job)
    error_files = [f for f in files if f.path.startswith(ERRORS_FOLDER + "/") and f.path.endswith(".parquet")]
    columns: list[str] = []
    rows: list[dict[str, Any]] = []
    total = 0
    for f in error_files:
        with resolved.storage.open_input_file(f"{resolved.key}/{f.path}") as handle:
            parquet = pq.ParquetFile(handle)
            total += parquet.metadata.num_rows
            if len(rows) < limit:
                table = parquet.read().slice(0, limit - len(rows))
                columns = columns or table.column_names
                rows.extend({k: _json_value(v) for k, v in record.items()} for record in table.to_pylist())
    return JobErrorsPublic(columns=columns, data=rows, files=len(error_files), truncated=total > len(rows))


def _json_value(value: Any) -> Any:
    """An Arrow value as JSON: error rows hold any input type (binary, timestamps, nested lists)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return str(value)
