"""Creating, starting, cancelling, deleting and showing jobs. Functions flush; routes commit."""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from runbatch.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    OutputExistsError,
)
from runbatch.identifiers import complete_name, parse_qualified_name, qualified
from runbatch.ml.model._signatures.core import FeatureGroupSpec, ModelSignature
from runbatch.ml.model._signatures.validate import resolve_params, validate_params
from runbatch.ml.model.batch import SaveMode
from runbatch.stage.paths import compile_pattern, parse_stage_path
from runbatch.wire.jobs import (
    JobCreate,
    JobPublic,
    LogLine,
    QueryInput,
    ShardPublic,
    StageInput,
    UploadInput,
    decode_schema,
    encode_schema,
)
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import JobLogRow, JobRow, SchemaRow, ServiceRow, ShardRow, utcnow
from server.jobs import file_stages, validation
from server.jobs.planner import InputFile, list_input_files, plan_partitioned, plan_slices
from server.jobs.states import (
    TERMINAL_JOB_STATUSES,
    JobPhase,
    JobStatus,
    ShardState,
    transition_job,
    transition_phase,
    transition_shard,
)
from server.paging import PageCursor
from server.registry import service as registry
from server.resources import service as resources
from server.stages import service as stages
from server.workers import service as workers

__all__ = [
    "append_logs",
    "cancel_job",
    "JobDraft",
    "JobFilters",
    "delete_job",
    "get_job",
    "job_public",
    "list_jobs",
    "mark_dispatched",
    "prepare_job",
    "record_job",
    "uploaded_input",
    "no_worker_message",
    "read_logs",
    "shard_public",
    "start_job",
]

DEFAULT_JOB_PREFIX = "BATCH_INFERENCE"


def _generated_name(prefix: str) -> str:
    return f"{prefix}_{str(uuid.uuid4()).replace('-', '_').upper()}"


def _job_namespace(
    session: Session, job_spec_name: str | None, prefix: str | None, model_db: str, model_schema: str
) -> tuple[SchemaRow, str]:
    """Job name and schema: ``job_name`` may be qualified; db and schema default to the model's."""
    raw = job_spec_name if job_spec_name is not None else prefix
    parts = parse_qualified_name(raw) if raw is not None else [DEFAULT_JOB_PREFIX]
    db, sch, base = complete_name(parts, model_db, model_schema)
    assert db is not None and sch is not None
    name = base if job_spec_name is not None else _generated_name(base)
    return resources.get_schema(session, db, sch), name


def _enforce_save_mode(output: stages.ResolvedStage, shown: str, mode: SaveMode) -> None:
    existing = output.storage.list(output.key + "/")
    if not existing:
        return
    if mode is SaveMode.ERROR:
        raise OutputExistsError(
            f"Output stage location '{shown}' is not empty. Found {len(existing)} existing files. When using ERROR "
            "mode, the output location must be empty. Please clear the existing files or use OVERWRITE mode."
        )
    output.storage.delete_prefix(output.key + "/")


@dataclass
class JobDraft:
    """A job request that passed every check; ``record_job`` stores it."""

    row: JobRow
    files: list[InputFile] | None
    output: stages.ResolvedStage
    shown_output: str
    mode: SaveMode
    live_workers: bool


def prepare_job(
    session: Session,
    cp: ControlPlane,
    principal: Principal,
    body: JobCreate,
    *,
    query_schema: pa.Schema | None = None,
) -> JobDraft:
    """Check everything knowable before compute starts; only reads (input footers included).

    Run it in a read-only session: on SQLite, reading thousands of footers must not hold the
    write lock. ``record_job`` then stores the draft in a short write transaction. A
    ``QueryInput`` comes with the schema of its already compiled query.
    """
    ref = body.model
    version = registry.get_version(session, ref.database, ref.schema_, ref.name, ref.version)
    fqmn = qualified(ref.database, ref.schema_, ref.name)
    functions = registry.functions_of(version.spec)
    input_spec, job_spec, output_spec = body.input_spec, body.job_spec, body.output_spec

    if input_spec.partition_column and version.model_type == "huggingface_pipeline":
        validation.check_partitioning(input_spec, functions[0], version.model_type)
    validation.check_gpu_runtime(job_spec, version.spec, fqmn, version.name)
    engine = validation.check_engine(
        body.inference_engine_options, version.model_type, version.spec, functions, job_spec.gpu_requests
    )
    fn = validation.resolve_function(functions, job_spec.function_name, fqmn, version.name)
    validation.check_partitioning(input_spec, fn, version.model_type)
    validation.check_resources(job_spec)
    pool = resources.get_compute_pool(session, body.compute_pool)
    if job_spec.gpu_requests is not None and not resources.is_gpu_family(pool.instance_family):
        raise InvalidArgumentError(
            f"gpu_requests={job_spec.gpu_requests} needs a GPU compute pool, but {pool.name} has instance family "
            f"{pool.instance_family}. Use SYSTEM_COMPUTE_POOL_GPU or a pool with a GPU_NV_* family."
        )
    validation.check_engine_target(
        engine,
        pool.name,
        pool.instance_family,
        resources.is_gpu_family(pool.instance_family),
        job_spec.gpu_requests,
    )
    live = workers.live_workers(session, cp.settings.worker_timeout_s, pool.name)
    workers.check_capacity(live, pool.name, job_spec)
    signature = ModelSignature.from_dict(fn.signature)
    with validation.as_invalid_argument():
        validate_params(input_spec.params, signature.params)
        params = resolve_params(input_spec.params, signature.params)

    job_schema, job_name = _job_namespace(
        session, job_spec.job_name, job_spec.job_name_prefix, ref.database, ref.schema_
    )
    _check_job_name_free(session, job_schema, job_name)

    ctx = {"database": body.database, "schema": body.schema_}
    if output_spec.base_stage_location is not None:
        output = parse_stage_path(output_spec.base_stage_location, **ctx).child(job_name)
    else:
        assert output_spec.stage_location is not None
        output = parse_stage_path(output_spec.stage_location, **ctx)
    resolved_out = stages.resolve_stage_path(session, cp.storage, output, cp.secrets)
    if resolved_out.external_url:
        raise InvalidArgumentError(
            f"The output location {output.as_dir()} is on an external stage; run_batch writes its results to "
            "internal stages only (as Snowflake does). Choose an internal stage for OutputSpec."
        )
    shown_output = (output_spec.stage_location or output.as_dir()).rstrip("/") + "/"

    where = f"function {fn.name} of model {fqmn} version {version.name}"
    case_sensitive = bool(
        ((version.spec.get("method_options") or {}).get(fn.target_method) or {}).get("case_sensitive")
    )
    column_handling = {k: dict(v) for k, v in (input_spec.column_handling or {}).items()}
    files: list[InputFile] | None = None
    input_stage: dict[str, str] | None = None
    if isinstance(body.input, StageInput):
        location = parse_stage_path(body.input.location, **ctx)
        resolved_in = stages.resolve_stage_path(session, cp.storage, location, cp.secrets)
        if location.contains(output) or output.contains(location):
            raise InvalidArgumentError(
                f"The output location {output.as_dir()} overlaps the input location {location.as_dir()}; write the "
                "output to a folder outside the input."
            )
        regex = compile_pattern(body.input.pattern)
        files = list_input_files(
            resolved_in.storage,
            resolved_in.key,
            location.as_dir(),
            lambda key: resolved_in.matches(regex, key),
        )
        if not files:
            raise InvalidArgumentError(
                f"No Parquet input files found under {location.as_dir()}"
                + (f" matching pattern {body.input.pattern!r}." if body.input.pattern else ".")
            )
        schema = files[0].schema
        for f in files[1:]:
            if not f.schema.equals(schema):
                raise InvalidArgumentError(
                    f"Input files do not share one schema: {f.key.rsplit('/', 1)[-1]} has {f.schema} but the first file "
                    f"has {schema}."
                )
        input_location = location.as_dir()
        input_key = resolved_in.key
        # Where to read from, by name: credentials are looked up when a shard starts, never stored here.
        input_stage = {"database": location.database, "schema": location.schema, "stage": location.stage}
    else:
        if isinstance(body.input, QueryInput):
            assert query_schema is not None, "a query input needs its compiled schema"
            schema = _as_parquet_reads(query_schema)
        else:
            schema = _declared_schema(body.input)
        input_location = output.child("_temporary/input").as_dir()
        input_key = output.child("_temporary/input").key

    feature_columns = validation.match_columns(
        signature.inputs, schema, case_sensitive=case_sensitive, column_handling=column_handling, where=where
    )
    partition_column = validation.match_partition_column(input_spec.partition_column, schema)
    # Chat messages whose media parts name files on stages: those stages are checked like file columns'.
    message_columns = [
        feature_columns[f.name]
        for f in signature.inputs
        if isinstance(f, FeatureGroupSpec) and f.name.lower() == "messages" and f.name in feature_columns
    ]
    output_key = output.key
    spec: dict[str, Any] = {
        "request": body.model_dump(mode="json", by_alias=True),
        "model": {
            "database": ref.database,
            "schema": ref.schema_,
            "name": ref.name,
            "version": version.name,
            "artifact_key": version.artifact_key,
            "model_type": version.model_type,
            "env": {
                k: (version.spec.get("env") or {}).get(k)
                for k in ("pip_requirements", "conda_dependencies", "python_version", "cuda_version")
            },
        },
        "function": {
            "name": fn.name,
            "target_method": fn.target_method,
            "signature": fn.signature,
            "function_type": fn.target_method_function_type,
            "partitioned": fn.is_partitioned,
        },
        "params": params,
        "feature_columns": feature_columns,
        "partition_column": partition_column,
        "column_handling": column_handling or None,
        "message_columns": message_columns or None,
        # Stage input is scanned here; uploaded and query input once it is there (start_job).
        "file_stages": (
            file_stages.check_file_stages(
                session, resolved_in.storage, [f.key for f in files], column_handling, ctx, message_columns
            )
            if files is not None
            else []
        ),
        "input_key": input_key,
        "input_stage": input_stage,
        "input_columns": schema.names,
        "input_schema": encode_schema(schema),
        "output_key": output_key,
        "temporary_key": f"{output_key}/_temporary",
        "engine": engine,
        "context": ctx,
    }
    job = JobRow(
        schema_id=job_schema.id,
        name=job_name,
        status=JobStatus.PENDING,
        owner=principal.name,
        phase=JobPhase.AWAITING_INPUT if files is None else JobPhase.QUEUED,
        compute_pool=pool.name,
        model_name=fqmn,
        version_name=version.name,
        function_name=fn.target_method,
        spec=spec,
        output_location=output.as_dir(),
        input_location=input_location,
        replicas=job_spec.replicas or 1,
        message="" if live else no_worker_message(pool.name),
    )
    return JobDraft(
        row=job,
        files=files,
        output=resolved_out,
        shown_output=shown_output,
        mode=output_spec.mode,
        live_workers=bool(live),
    )


def _check_job_name_free(session: Session, job_schema: SchemaRow, job_name: str) -> None:
    if session.scalars(
        select(JobRow.id).where(
            JobRow.schema_id == job_schema.id, JobRow.name == job_name, JobRow.deleted_at.is_(None)
        )
    ).first():
        raise AlreadyExistsError(
            f"Job {qualified(job_schema.database.name, job_schema.name, job_name)} already exists. Choose another "
            "job_name, or delete the old job with delete_job()."
        )


def record_job(session: Session, cp: ControlPlane, draft: JobDraft) -> JobRow:
    """Store a prepared job (and plan its shards when its input is already there)."""
    job = draft.row
    job_schema = session.get(SchemaRow, job.schema_id)
    if job_schema is None:
        raise NotFoundError(f"The schema of job {job.name} was dropped while the job was being submitted.")
    _check_job_name_free(session, job_schema, job.name)
    # Last, because OVERWRITE deletes: nothing that can refuse the job may come after it.
    _enforce_save_mode(draft.output, draft.shown_output, draft.mode)
    session.add(job)
    session.flush()
    if draft.files is not None:
        _plan(session, cp, job, draft.files)
    return job


def no_worker_message(pool: str) -> str:
    return (
        f"Waiting for a worker: no live worker serves compute pool {pool}. Start one with "
        f"`runbatch worker --pools {pool}`."
    )


def mark_dispatched(job: JobRow) -> list[uuid.UUID]:
    """Shards to send to workers now; their dispatch time lets the reaper resend lost ones."""
    now = utcnow()
    due = [s for s in job.shards if s.state == ShardState.PENDING and s.not_before is None]
    for shard in due:
        shard.dispatched_at = now
    return [s.id for s in due]


def _declared_schema(upload: UploadInput) -> pa.Schema:
    if upload.arrow_schema is not None:
        try:
            schema = decode_schema(upload.arrow_schema)
        except ValueError as exc:
            raise InvalidArgumentError(str(exc)) from exc
    else:
        schema = pa.schema([pa.field(c.name, _parse_type(c.type)) for c in upload.columns or []])
    return _as_parquet_reads(schema)


def _as_parquet_reads(schema: pa.Schema) -> pa.Schema:
    """The schema a Parquet file written with ``schema`` reads back as (a few Arrow types, like
    dictionaries of large strings, do not survive Parquet); the uploaded files are compared to it."""
    buffer = io.BytesIO()
    try:
        pq.write_table(schema.empty_table(), buffer)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid) as exc:
        raise InvalidArgumentError(f"The input schema cannot be stored as Parquet: {exc}") from None
    return pq.ParquetFile(io.BytesIO(buffer.getvalue())).schema_arrow.remove_metadata()


def _parse_type(text: str) -> pa.DataType:
    try:
        return pa.type_for_alias(text)
    except ValueError:
        pass
    if text.startswith(("list<", "large_list<")):
        inner = text[text.index("<") + 1 : -1].split(":", 1)[-1].strip()
        return pa.list_(_parse_type(inner))
    if text.startswith("timestamp["):
        unit = text[len("timestamp[") :].split(",")[0].rstrip("]")
        return pa.timestamp(unit)
    raise InvalidArgumentError(f"Unknown column type {text!r} in the job's input schema.")


def _plan(session: Session, cp: ControlPlane, job: JobRow, files: list[InputFile]) -> None:
    job.rows_total = sum(f.rows for f in files)
    job.input_ready_at = utcnow()
    partition_column = job.spec.get("partition_column")
    if partition_column is not None:
        slices = plan_partitioned(files, job.replicas)
        # Which rows a shard keeps is known only once it has read them; until then, an even share.
        shares = [len(range(i, job.rows_total, len(slices))) for i in range(len(slices))]
    else:
        # A partitioned function without a partition column sees the whole input as one partition.
        slices = plan_slices(files, 1 if job.spec["function"]["partitioned"] else job.replicas)
        shares = [sum(s.rows for s in shard_slices) for shard_slices in slices]
    for index, shard_slices in enumerate(slices):
        job.shards.append(
            ShardRow(
                index=index,
                state=ShardState.PENDING,
                attempt=0,
                max_attempts=cp.settings.max_shard_attempts,
                slices=[s.model_dump() for s in shard_slices],
                rows_total=shares[index],
            )
        )
    session.flush()


def uploaded_input(cp: ControlPlane, job: JobRow) -> list[InputFile]:
    """The files a client uploaded for ``job`` (reads their footers: call it outside a write transaction)."""
    if job.phase != JobPhase.AWAITING_INPUT:
        raise ConflictError(f"Job {job.name} is not waiting for input (phase {job.phase}).")
    return list_input_files(cp.storage, job.spec["input_key"], job.input_location)


def start_job(session: Session, cp: ControlPlane, job: JobRow, files: list[InputFile]) -> None:
    """The client finished uploading ``files``: check them and plan the shards."""
    if job.phase != JobPhase.AWAITING_INPUT:
        raise ConflictError(f"Job {job.name} is not waiting for input (phase {job.phase}).")
    spec = job.spec
    if not files:
        raise InvalidArgumentError(
            f"No input was uploaded to {job.input_location}; upload Parquet files, then start."
        )
    declared = decode_schema(spec["input_schema"])
    for f in files:
        if f.schema.names != declared.names:
            raise InvalidArgumentError(
                f"Uploaded input has columns {f.schema.names}, but the job was created for {declared.names}."
            )
        changed = [
            f"{name}: {got} (declared {want})"
            for name, got, want in zip(declared.names, f.schema.types, declared.types, strict=True)
            if not got.equals(want)
        ]
        if changed:
            raise InvalidArgumentError(
                f"Uploaded input has other column types than the job was created for: {', '.join(changed)}."
            )
    if spec.get("column_handling") or spec.get("message_columns"):
        keys = [f.key for f in files]
        found = file_stages.check_file_stages(
            session,
            cp.storage,
            keys,
            spec.get("column_handling") or {},
            spec.get("context") or {},
            spec.get("message_columns"),
        )
        job.spec = {**spec, "file_stages": found}
    _plan(session, cp, job, files)
    if not transition_phase(session, job.id, from_={JobPhase.AWAITING_INPUT}, to=JobPhase.QUEUED):
        raise ConflictError(f"Job {job.name} stopped waiting for input while it was being started.")


def get_job(session: Session, database: str, schema: str, name: str) -> JobRow:
    sch = session.scalars(
        select(SchemaRow)
        .join(SchemaRow.database)
        .where(SchemaRow.name == schema, SchemaRow.database.has(name=database))
    ).one_or_none()
    job = None
    if sch is not None:
        job = session.scalars(
            select(JobRow).where(JobRow.schema_id == sch.id, JobRow.name == name, JobRow.deleted_at.is_(None))
        ).one_or_none()
    if job is None:
        raise NotFoundError(f"Job {qualified(database, schema, name)} does not exist or not authorized.")
    return job


@dataclass(frozen=True)
class JobFilters:
    """What ``GET /jobs`` can filter on; every field narrows the list (None: no filter)."""

    database: str | None = None
    schema: str | None = None
    statuses: tuple[str, ...] = ()
    name: str | None = None
    search: str | None = None
    compute_pool: str | None = None
    owner: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


def list_jobs(
    session: Session,
    *,
    database: str | None,
    schema: str | None,
    status: str | None,
    limit: int,
    offset: int,
    name: str | None = None,
    filters: JobFilters | None = None,
    after: PageCursor | None = None,
) -> tuple[list[JobRow], int]:
    """Jobs newest first (created_at, then id, both descending) and how many match in all.

    ``after`` continues a keyset page past that row; ``offset`` skips rows (kept for old clients).
    """
    f = filters or JobFilters()
    query = select(JobRow).where(JobRow.deleted_at.is_(None))
    name = name if name is not None else f.name
    if name is not None:
        query = query.where(JobRow.name == name)
    database = database if database is not None else f.database
    schema = schema if schema is not None else f.schema
    if database is not None or schema is not None:
        query = query.join(JobRow.schema)
        if schema is not None:
            query = query.where(SchemaRow.name == schema)
        if database is not None:
            query = query.where(SchemaRow.database.has(name=database))
    statuses = (status,) if status is not None else f.statuses
    if statuses:
        query = query.where(JobRow.status.in_(statuses))
    if f.search:
        escaped = f.search.upper().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(func.upper(JobRow.name).like(f"%{escaped}%", escape="\\"))
    if f.compute_pool is not None:
        query = query.where(JobRow.compute_pool == f.compute_pool)
    if f.owner is not None:
        query = query.where(JobRow.owner == f.owner)
    if f.created_after is not None:
        query = query.where(JobRow.created_at > f.created_after)
    if f.created_before is not None:
        query = query.where(JobRow.created_at < f.created_before)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    if after is not None:
        query = query.where(
            or_(
                JobRow.created_at < after.created_at,
                and_(JobRow.created_at == after.created_at, JobRow.id < after.id),
            )
        )
    query = query.order_by(JobRow.created_at.desc(), JobRow.id.desc()).offset(offset)
    if limit > 0:
        query = query.limit(limit)
    return list(session.scalars(query)), total


def _job_service(session: Session, job: JobRow) -> ServiceRow | None:
    """The job service a job mirrors (EXECUTE JOB SERVICE), None for a batch job."""
    return session.scalars(select(ServiceRow).where(ServiceRow.job_id == job.id)).one_or_none()


def cancel_job(session: Session, job: JobRow) -> None:
    """Ask a job to stop: pending shards end now, running ones when their runner hears of it."""
    if job.status in TERMINAL_JOB_STATUSES or job.status == JobStatus.CANCELLING:
        return
    service = _job_service(session, job)
    if service is not None:
        from server.spcs import service as spcs  # it builds on this module

        spcs.cancel_job_service(session, service)
        session.refresh(job)
        return
    if job.phase in (JobPhase.FINALIZING, JobPhase.FINISHED):
        return  # too late: its outcome is decided and being committed
    transition_job(session, job.id, from_={JobStatus.PENDING, JobStatus.RUNNING}, to=JobStatus.CANCELLING)
    for shard in job.shards:
        if shard.state == ShardState.PENDING:
            transition_shard(
                session, shard.id, from_={ShardState.PENDING}, to=ShardState.CANCELLED, finished_at=utcnow()
            )
    session.flush()
    session.refresh(job)


def delete_job(session: Session, job: JobRow) -> bool:
    """Delete a job; a running one is cancelled first. Returns True when it ended right away."""
    service = _job_service(session, job)
    if service is not None:
        from server.spcs import service as spcs  # it builds on this module

        # As DROP SERVICE (which deletes this job through this function once the service row is gone).
        ended = spcs.delete_job_service(session, service)
        session.refresh(job)
        return ended
    now = utcnow()
    if job.status not in TERMINAL_JOB_STATUSES:
        cancel_job(session, job)
        job.deleted_at = now
        session.flush()
        return False
    transition_job(
        session,
        job.id,
        from_=set(TERMINAL_JOB_STATUSES - {JobStatus.DELETED}),
        to=JobStatus.DELETED,
        deleted_at=now,
    )
    session.execute(delete(JobLogRow).where(JobLogRow.job_id == job.id))
    session.flush()
    return True


def job_public(job: JobRow) -> JobPublic:
    counts: dict[str, int] = {}
    rows_done = rows_failed = 0
    for shard in job.shards:
        counts[shard.state] = counts.get(shard.state, 0) + 1
        rows_done += shard.rows_done
        rows_failed += shard.rows_failed
    schema = job.schema
    return JobPublic(
        uuid=job.id,
        id=qualified(schema.database.name, schema.name, job.name),
        database_name=schema.database.name,
        schema_name=schema.name,
        name=job.name,
        status=job.status,
        phase=job.phase,
        message=job.message,
        owner=job.owner,
        compute_pool=job.compute_pool,
        model_name=job.model_name,
        version_name=job.version_name,
        function_name=job.function_name,
        output_location=job.output_location,
        input_location=job.input_location,
        replicas=job.replicas,
        rows_total=job.rows_total,
        rows_done=rows_done,
        rows_failed=rows_failed,
        shards_total=len(job.shards),
        shards_done=counts.get(ShardState.DONE, 0),
        shards_failed=counts.get(ShardState.FAILED, 0),
        created_at=job.created_at,
        input_ready_at=job.input_ready_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        spec=job.spec["request"],
    )


def shard_public(shard: ShardRow) -> ShardPublic:
    return ShardPublic(
        id=shard.id,
        index=shard.index,
        state=shard.state,
        attempt=shard.attempt,
        max_attempts=shard.max_attempts,
        rows_total=shard.rows_total,
        rows_done=shard.rows_done,
        rows_failed=shard.rows_failed,
        worker=shard.worker,
        heartbeat_at=shard.heartbeat_at,
        started_at=shard.started_at,
        finished_at=shard.finished_at,
        message=shard.message,
    )


_MAX_LOG_LINES_PER_INSTANCE = 20_000


def append_logs(
    session: Session, job_id: uuid.UUID, instance_id: int, attempt: int, lines: list[str]
) -> None:
    """Store log lines, at most ``_MAX_LOG_LINES_PER_INSTANCE`` per instance over all its attempts
    (a model printing in a loop must not fill the database); a last line says where it stopped."""
    stored = session.scalar(
        select(func.count())
        .select_from(JobLogRow)
        .where(JobLogRow.job_id == job_id, JobLogRow.instance_id == instance_id)
    )
    room = _MAX_LOG_LINES_PER_INSTANCE - (stored or 0)
    if room <= 0:
        return
    if len(lines) > room:
        lines = [
            *lines[: room - 1],
            f"[runbatch] instance {instance_id} reached the limit of {_MAX_LOG_LINES_PER_INSTANCE} log lines; "
            "later lines are dropped.",
        ]
    now = utcnow()
    session.add_all(
        JobLogRow(job_id=job_id, instance_id=instance_id, attempt=attempt, logged_at=now, line=line[:10_000])
        for line in lines
    )
    session.flush()


def read_logs(session: Session, job: JobRow, *, instance_id: int | None, limit: int) -> list[LogLine]:
    query = select(JobLogRow).where(JobLogRow.job_id == job.id)
    if instance_id is not None:
        query = query.where(JobLogRow.instance_id == instance_id)
    if limit > 0:
        rows = list(session.scalars(query.order_by(JobLogRow.id.desc()).limit(limit)))[::-1]
    else:
        rows = list(session.scalars(query.order_by(JobLogRow.id)))
    return [
        LogLine(instance_id=r.instance_id, attempt=r.attempt, logged_at=r.logged_at, line=r.line)
        for r in rows
    ]
