"""Job services: record a specification, hand it to a worker, follow its containers to their end.

A job service is a ``services`` row plus a ``jobs`` row that mirrors its status: the mirror is
what ``list_jobs()``, ``SHOW JOB SERVICES``, ``DESCRIBE SERVICE`` and the job log API read. The
mirror's phase is FINISHED from the start because phases describe batch inference shards; the
batch finalizer and reaper skip FINISHED jobs, so they never touch a job service.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from runbatch.errors import (
    AlreadyExistsError,
    ConflictError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ServiceUnavailableError,
    UnsupportedError,
)
from runbatch.identifiers import qualified
from runbatch.stage.paths import parse_stage_path
from runbatch.wire.services import (
    ContainerWork,
    ServiceSpecification,
    ServiceWork,
    VolumeWork,
    parse_specification,
)
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import ComputePoolRow, JobRow, SchemaRow, ServiceLogRow, ServiceRow, utcnow
from server.jobs import service as jobs
from server.jobs.states import JobPhase, JobStatus
from server.resources import service as resources
from server.spcs import image_repositories
from server.stages import service as stages

__all__ = [
    "JOB",
    "TERMINAL",
    "ServiceDispatcher",
    "append_logs",
    "build_work",
    "cancel_job_service",
    "claim",
    "delete_job_service",
    "describe_record",
    "drop_service",
    "finish",
    "get_service",
    "record_job_service",
    "beat",
    "endpoint_address",
    "list_services",
    "read_logs",
    "reconcile",
    "record_service",
    "resume",
    "suspend",
    "status_entries",
]

log = logging.getLogger("runbatch.server")

JOB = "JOB"
SERVICE = "SERVICE"
TERMINAL = frozenset({JobStatus.DONE, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.INTERNAL_ERROR})
# A long-running service's own statuses, beyond the job statuses it shares (PENDING, RUNNING, FAILED).
READY = "READY"
SUSPENDING = "SUSPENDING"
SUSPENDED = "SUSPENDED"
_STOPPING = frozenset({JobStatus.CANCELLING, SUSPENDING})
_MAX_LOG_LINES = 100_000
_CANCELLED_MESSAGE = "Cancelled: its containers were stopped."
_ENGINE_HINT = (
    "job services need a Docker engine: run the control plane with RUNBATCH_BROKER_URL and `runbatch worker` "
    "processes with RUNBATCH_EXECUTOR=docker, or start Docker on this host"
)


@runtime_checkable
class ServiceDispatcher(Protocol):
    """A dispatcher that can also start a job service's containers on a worker of the pool."""

    def dispatch_service(self, pool: str, service_id: uuid.UUID) -> None: ...

    def container_engine_problem(self) -> str | None:
        """Why containers cannot run here (no Docker engine), or None."""
        ...


def engine_problem(cp: ControlPlane) -> str | None:
    dispatcher = cp.dispatcher
    if not isinstance(dispatcher, ServiceDispatcher):
        return f"This control plane has no workers that run containers; {_ENGINE_HINT}."
    problem = dispatcher.container_engine_problem()
    return f"{_ENGINE_HINT}. {problem}" if problem else None


def _check_images(
    session: Session, cp: ControlPlane, principal: Principal, spec: ServiceSpecification
) -> None:
    """An image repository path (/db/schema/repo/image:tag) must name a repository the caller may pull from."""
    for i, container in enumerate(spec.spec.containers):
        image_repositories.resolve_image(
            session, cp, principal, container.image, where=f"spec.containers[{i}].image"
        )


def _resolve_volumes(
    session: Session, spec: ServiceSpecification, database: str, schema: str
) -> dict[str, dict[str, str]]:
    """Stage volumes, checked now (a missing stage fails the statement, not the container)."""
    resolved: dict[str, dict[str, str]] = {}
    for i, volume in enumerate(spec.spec.volumes):
        if volume.source == "local":
            continue
        try:
            path = parse_stage_path(volume.source, database=database, schema=schema)
            stages.get_stage(session, path.database, path.schema, path.stage)
        except InvalidArgumentError as exc:
            raise InvalidArgumentError(f"spec.volumes[{i}].source {volume.source!r}: {exc}") from None
        resolved[volume.name] = {
            "database": path.database,
            "schema": path.schema,
            "stage": path.stage,
            "path": path.path,
        }
    return resolved


def read_spec_file(
    session: Session, cp: ControlPlane, stage: str, file: str, database: str | None, schema: str | None
) -> str:
    """The text of ``SPECIFICATION_FILE`` on ``FROM @stage``."""
    path = parse_stage_path(stage, database=database, schema=schema).child(file)
    resolved = stages.resolve_stage_path(session, cp.storage, path, cp.secrets)
    key = resolved.key_for(path.path)
    if not resolved.storage.exists(key):
        raise NotFoundError(
            f"Specification file {path} does not exist. Upload it with session.file.put first."
        )
    return resolved.storage.read_bytes(key).decode("utf-8")


def _placement(
    session: Session,
    cp: ControlPlane,
    spec: ServiceSpecification,
    *,
    database: str,
    schema: str,
    name: str,
    pool: str,
) -> tuple[ComputePoolRow, SchemaRow, dict[str, dict[str, str]]]:
    """The pool, the schema and the resolved stage volumes of a new (job) service named ``name``."""
    pool_row = resources.get_compute_pool(session, pool)
    schema_row = resources.get_schema(session, database, schema)
    volumes = _resolve_volumes(session, spec, database, schema)
    problem = engine_problem(cp)
    if problem:
        raise InvalidArgumentError(problem)
    if session.scalars(
        select(ServiceRow.id).where(ServiceRow.schema_id == schema_row.id, ServiceRow.name == name)
    ).first():
        raise AlreadyExistsError(
            f"Service {qualified(database, schema, name)} already exists. Choose another name, or DROP SERVICE it "
            "first."
        )
    return pool_row, schema_row, volumes


def record_job_service(
    session: Session,
    cp: ControlPlane,
    principal: Principal,
    *,
    database: str,
    schema: str,
    name: str,
    pool: str,
    spec_text: str,
) -> ServiceRow:
    """Validate everything that can be known now and record the job service (PENDING)."""
    spec = parse_specification(spec_text)
    _check_images(session, cp, principal, spec)
    pool_row, schema_row, volumes = _placement(
        session, cp, spec, database=database, schema=schema, name=name, pool=pool
    )
    if session.scalars(
        select(JobRow.id).where(
            JobRow.schema_id == schema_row.id, JobRow.name == name, JobRow.deleted_at.is_(None)
        )
    ).first():
        raise AlreadyExistsError(
            f"A job named {qualified(database, schema, name)} exists. Choose another NAME, or delete that job."
        )
    specification = spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    job = JobRow(
        schema_id=schema_row.id,
        name=name,
        status=JobStatus.PENDING,
        phase=JobPhase.FINISHED,
        message="",
        owner=principal.name,
        compute_pool=pool_row.name,
        model_name="",
        version_name="",
        function_name="",
        spec={"request": {"kind": "job_service", "specification": specification}},
        output_location="",
        input_location="",
        replicas=1,
    )
    session.add(job)
    session.flush()
    row = ServiceRow(
        schema_id=schema_row.id,
        name=name,
        kind=JOB,
        compute_pool=pool_row.name,
        specification={"spec": specification, "volumes": volumes},
        spec_text=spec_text,
        status=JobStatus.PENDING,
        message="",
        containers={c.name: {"status": JobStatus.PENDING} for c in spec.spec.containers},
        job_id=job.id,
        owner=principal.name,
    )
    session.add(row)
    session.flush()
    return row


def record_service(
    session: Session,
    cp: ControlPlane,
    principal: Principal,
    *,
    database: str,
    schema: str,
    name: str,
    pool: str,
    spec_text: str,
    min_instances: int,
    max_instances: int,
) -> ServiceRow:
    """CREATE SERVICE: validate and record a long-running service (PENDING until a worker claims it)."""
    if not 1 <= min_instances <= max_instances:
        raise InvalidArgumentError(
            f"MIN_INSTANCES = {min_instances} and MAX_INSTANCES = {max_instances}: both must be at least 1 and "
            "MIN_INSTANCES <= MAX_INSTANCES."
        )
    if max_instances > 1:
        raise UnsupportedError(
            f"MAX_INSTANCES = {max_instances}: runbatch runs one instance of a service. Set MIN_INSTANCES = 1 "
            "and MAX_INSTANCES = 1, or create several services."
        )
    spec = parse_specification(spec_text)
    _check_images(session, cp, principal, spec)
    for i, endpoint in enumerate(spec.spec.endpoints):
        if endpoint.protocol != "HTTP":
            raise UnsupportedError(
                f"spec.endpoints[{i}].protocol {endpoint.protocol}: the control plane proxies HTTP endpoints only."
            )
    pool_row, schema_row, volumes = _placement(
        session, cp, spec, database=database, schema=schema, name=name, pool=pool
    )
    row = ServiceRow(
        schema_id=schema_row.id,
        name=name,
        kind=SERVICE,
        compute_pool=pool_row.name,
        specification={
            "spec": spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            "volumes": volumes,
        },
        spec_text=spec_text,
        status=JobStatus.PENDING,
        message="",
        containers={c.name: {"status": JobStatus.PENDING} for c in spec.spec.containers},
        endpoints={},
        min_instances=min_instances,
        max_instances=max_instances,
        owner=principal.name,
    )
    session.add(row)
    session.flush()
    return row


def list_services(session: Session, database: str | None, schema: str | None) -> list[ServiceRow]:
    query = select(ServiceRow)
    if database is not None:
        query = query.join(ServiceRow.schema).where(SchemaRow.database.has(name=database))
        if schema is not None:
            query = query.where(SchemaRow.name == schema)
    return list(session.scalars(query.order_by(ServiceRow.name)))


def suspend(session: Session, row: ServiceRow) -> None:
    """ALTER SERVICE ... SUSPEND: the worker stops the containers; the service keeps its definition."""
    if row.kind != SERVICE:
        raise InvalidArgumentError(f"{row.name} is a job service; job services cannot be suspended.")
    if row.status in (JobStatus.PENDING, JobStatus.FAILED):
        row.status = SUSPENDED
    elif row.status in (JobStatus.RUNNING, READY):
        row.status = SUSPENDING
    row.endpoints = {}
    session.flush()


def resume(session: Session, row: ServiceRow) -> bool:
    """ALTER SERVICE ... RESUME; True when the service must be dispatched again."""
    if row.kind != SERVICE:
        raise InvalidArgumentError(f"{row.name} is a job service; job services cannot be resumed.")
    if row.status == SUSPENDING:
        raise ConflictError(f"Service {row.name} is still suspending; resume it once it is SUSPENDED.")
    if row.status not in (SUSPENDED, JobStatus.FAILED):
        return False
    row.status = JobStatus.PENDING
    row.message = ""
    row.containers = {name: {"status": JobStatus.PENDING} for name in row.containers}
    session.flush()
    return True


def beat(
    session: Session,
    service_id: uuid.UUID,
    attempt: int,
    *,
    ready: bool,
    endpoints: dict[str, str],
    containers: dict[str, dict[str, Any]],
) -> bool:
    """A worker's report on a running service; True tells it to stop the containers."""
    row = session.get(ServiceRow, service_id)
    if row is None or row.attempt != attempt:
        return True
    row.heartbeat_at = utcnow()
    if row.status in _STOPPING:
        session.flush()
        return True
    if row.kind == SERVICE and row.status in (JobStatus.RUNNING, READY):
        # READY only while every readiness probe answers: a restarted container is not ready yet.
        row.status = READY if ready else JobStatus.RUNNING
        row.endpoints = endpoints
        if containers:
            row.containers = {name: containers.get(name, state) for name, state in row.containers.items()}
        session.flush()
    session.flush()
    return row.status not in (JobStatus.RUNNING, READY)


def reconcile(session: Session, timeout_s: float) -> list[tuple[str, uuid.UUID]]:
    """Services whose worker stopped beating: a service goes back to PENDING (returned, to dispatch
    again; its old worker, if it comes back, hears stop), a job service fails, a stopping one ends."""
    cutoff = utcnow() - timedelta(seconds=timeout_s)
    stale = session.scalars(
        select(ServiceRow).where(
            ServiceRow.status.in_([JobStatus.RUNNING, READY, *_STOPPING]), ServiceRow.heartbeat_at < cutoff
        )
    )
    again: list[tuple[str, uuid.UUID]] = []
    for row in list(stale):
        lost = f"The worker running it ({row.worker}) stopped answering."
        if row.status in _STOPPING or row.kind == JOB:
            finish(session, row.id, row.attempt, JobStatus.FAILED, None, lost, {})
        else:
            log.warning("service %s: %s Starting it again.", row.name, lost)
            row.status = JobStatus.PENDING
            row.message = lost + " It is being started again."
            row.endpoints = {}
            row.containers = {name: {"status": JobStatus.PENDING} for name in row.containers}
            again.append((row.compute_pool, row.id))
    session.flush()
    return again


def endpoint_address(row: ServiceRow, endpoint: str) -> str:
    """host:port of a public endpoint of a READY service, for the control plane's proxy."""
    declared = {e["name"]: e for e in row.specification["spec"]["spec"].get("endpoints", [])}
    if endpoint not in declared:
        raise NotFoundError(
            f"Service {row.name} has no endpoint {endpoint!r}; its endpoints are {', '.join(declared) or 'none'}."
        )
    if not declared[endpoint].get("public"):
        raise PermissionDeniedError(
            f"Endpoint {endpoint!r} of service {row.name} is not public; set public: true in the specification to "
            "reach it through the control plane."
        )
    if row.status != READY or endpoint not in row.endpoints:
        raise ServiceUnavailableError(f"Service {row.name} is {row.status}, not READY; try again when it is.")
    return str(row.endpoints[endpoint])


def get_service(session: Session, database: str, schema: str, name: str) -> ServiceRow:
    schema_row = resources.get_schema(session, database, schema)
    row = session.scalars(
        select(ServiceRow).where(ServiceRow.schema_id == schema_row.id, ServiceRow.name == name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Service {qualified(database, schema, name)} does not exist or not authorized.")
    return row


def _by_id(session: Session, service_id: uuid.UUID) -> ServiceRow:
    row = session.get(ServiceRow, service_id)
    if row is None:
        raise NotFoundError(f"Service {service_id} does not exist (it was dropped).")
    return row


def _mirror(session: Session, row: ServiceRow, **fields: Any) -> None:
    if row.job_id is not None:
        session.execute(update(JobRow).where(JobRow.id == row.job_id).values(**fields))


def claim(session: Session, service_id: uuid.UUID, worker: str) -> ServiceRow:
    """Win the service for ``worker`` (compare-and-set), so a redelivered message starts nothing."""
    row = _by_id(session, service_id)
    now = utcnow()
    stmt = (
        update(ServiceRow)
        .where(ServiceRow.id == service_id, ServiceRow.status == JobStatus.PENDING)
        .values(
            status=JobStatus.RUNNING,
            attempt=ServiceRow.attempt + 1,
            worker=worker,
            started_at=now,
            heartbeat_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    won = session.execute(stmt).rowcount == 1  # type: ignore[attr-defined]
    if not won:
        raise ConflictError(f"Service {row.name} is {row.status}; nothing to start.")
    session.refresh(row)
    row.containers = {name: {"status": JobStatus.RUNNING} for name in row.containers}
    _mirror(session, row, status=JobStatus.RUNNING, started_at=now)
    session.flush()
    return row


def build_work(session: Session, cp: ControlPlane, row: ServiceRow) -> ServiceWork:
    """The work order (with stage credentials: only the claiming worker gets it)."""
    from server.spcs import model_service  # it builds on this module

    spec = ServiceSpecification.model_validate(row.specification["spec"])
    volumes: list[VolumeWork] = []
    for volume in spec.spec.volumes:
        ref = row.specification["volumes"].get(volume.name)
        if ref is None:
            volumes.append(VolumeWork(name=volume.name))
            continue
        model = model_service.model_volume(cp, volume.name, ref)
        if model is not None:
            volumes.append(model)
            continue
        stage = stages.get_stage(session, ref["database"], ref["schema"], ref["stage"])
        storage, root = stages.stage_storage(stage, cp.storage, cp.secrets)
        prefix = "/".join(p for p in (root, ref["path"]) if p)
        volumes.append(VolumeWork(name=volume.name, storage=storage.config, prefix=prefix))
    schema = row.schema
    containers = []
    runtime = model_service.runtime_of(row)
    for c in spec.spec.containers:
        resources_ = c.resources.effective()
        # An image repository path becomes the registry's reference, with a token that pulls only it.
        try:
            pulled = image_repositories.resolve_image(
                session, cp, None, c.image, where=f"Container {c.name} image"
            )
        except (NotFoundError, InvalidArgumentError):
            # The repository was dropped (or the registry unset) since the service was created: the
            # worker then fails the container, image not found, rather than the claim never ending.
            pulled = None
        containers.append(
            ContainerWork(
                name=c.name,
                image=pulled.reference if pulled else c.image,
                registry_token=image_repositories.pull_token(cp, pulled, row.owner) if pulled else None,
                command=c.command,
                args=c.args,
                env={
                    **c.env,
                    "SNOWFLAKE_SERVICE_NAME": row.name,
                    "SNOWFLAKE_DATABASE": schema.database.name,
                    "SNOWFLAKE_SCHEMA": schema.name,
                },
                cpu=resources_.cpu,
                memory=resources_.memory,
                gpu=resources_.gpu,
                mounts={m.name: m.mount_path for m in c.volume_mounts},
                readiness_port=c.readiness_probe.port if c.readiness_probe else None,
                readiness_path=c.readiness_probe.path if c.readiness_probe else None,
                runtime=runtime,
            )
        )
    return ServiceWork(
        service_id=row.id,
        job_id=row.job_id or uuid.UUID(int=0),
        name=qualified(schema.database.name, schema.name, row.name),
        attempt=row.attempt,
        kind=JOB if row.kind == JOB else SERVICE,
        containers=containers,
        volumes=volumes,
        ports={e.name: e.port for e in spec.spec.endpoints},
    )


def append_logs(
    session: Session, service_id: uuid.UUID, attempt: int, container: str, lines: list[str]
) -> None:
    """Logs go to the mirror job's log, one log "instance" per container (its index in the spec)."""
    row = _by_id(session, service_id)
    names = list(row.containers)
    if container not in names:
        raise InvalidArgumentError(f"Service {row.name} has no container {container!r}.")
    if row.job_id is not None:
        jobs.append_logs(session, row.job_id, names.index(container), attempt, lines)
        return
    stored = session.scalar(
        select(func.count()).select_from(ServiceLogRow).where(ServiceLogRow.service_id == row.id)
    )
    room = _MAX_LOG_LINES - (stored or 0)
    if room <= 0:
        # A service printing in a loop must not fill the database: its oldest lines go first.
        oldest = select(ServiceLogRow.id).where(ServiceLogRow.service_id == row.id).order_by(ServiceLogRow.id)
        session.execute(
            delete(ServiceLogRow).where(ServiceLogRow.id.in_(oldest.limit(len(lines)).scalar_subquery()))
        )
    now = utcnow()
    session.add_all(
        ServiceLogRow(
            service_id=row.id, container=container, attempt=attempt, logged_at=now, line=line[:10_000]
        )
        for line in lines
    )
    session.flush()


def read_logs(session: Session, row: ServiceRow, container: str, limit: int) -> list[str]:
    """The newest ``limit`` lines of one container (all with ``limit <= 0``), oldest first."""
    names = list(row.containers)
    if row.job_id is not None:
        job = session.get(JobRow, row.job_id)
        if job is None:
            return []
        return [
            log.line for log in jobs.read_logs(session, job, instance_id=names.index(container), limit=limit)
        ]
    query = select(ServiceLogRow.line).where(
        ServiceLogRow.service_id == row.id, ServiceLogRow.container == container
    )
    if limit > 0:
        return list(session.scalars(query.order_by(ServiceLogRow.id.desc()).limit(limit)))[::-1]
    return list(session.scalars(query.order_by(ServiceLogRow.id)))


def finish(
    session: Session,
    service_id: uuid.UUID,
    attempt: int,
    status: str,
    exit_code: int | None,
    message: str,
    containers: dict[str, dict[str, Any]],
) -> ServiceRow | None:
    """The worker saw every container end. A service dropped while running is deleted now; a job service
    cancelled while running is kept, CANCELLED, with its logs."""
    row = session.get(ServiceRow, service_id)
    if row is None or row.attempt != attempt or row.status in TERMINAL or row.status == SUSPENDED:
        return row
    now = utcnow()
    final: str
    if row.status == JobStatus.CANCELLING:
        final = JobStatus.CANCELLED
    elif row.status == SUSPENDING:
        final = SUSPENDED
    else:
        final = JobStatus(status)
    if final == JobStatus.CANCELLED:
        # The worker killed the containers because it was told to: their exit codes are not failures.
        message = _CANCELLED_MESSAGE
        containers = {
            name: {**state, "status": JobStatus.CANCELLED, "message": message}
            if state.get("status") != JobStatus.DONE
            else state
            for name, state in containers.items()
        }
    row.endpoints = {}
    row.status = final
    row.exit_code = exit_code
    row.message = message
    # Containers the worker could not follow (an image missing, a launch refused) end with the service.
    row.containers = {
        name: containers.get(name) or {"status": final, "message": message} for name in row.containers
    }
    row.finished_at = now
    _mirror(session, row, status=final, message=message, finished_at=now)
    session.flush()
    if row.dropping:
        _delete(session, row)
        return None
    return row


def _delete(session: Session, row: ServiceRow) -> None:
    job = session.get(JobRow, row.job_id) if row.job_id is not None else None
    session.delete(row)
    session.flush()
    if job is not None:
        jobs.delete_job(session, job)


def drop_service(session: Session, row: ServiceRow) -> bool:
    """DROP SERVICE: a finished one goes now; a running one is stopped by its worker, then goes.
    True when it is gone now."""
    if row.status in (JobStatus.PENDING, SUSPENDED, *TERMINAL):
        if row.status == JobStatus.PENDING:
            _mirror(session, row, status=JobStatus.CANCELLED, finished_at=utcnow())
            session.flush()
            if row.job_id is not None:
                session.expire_all()
        _delete(session, row)
        return True
    row.status = JobStatus.CANCELLING
    row.dropping = True
    _mirror(session, row, status=JobStatus.CANCELLING)
    session.flush()
    return False


def cancel_job_service(session: Session, row: ServiceRow) -> None:
    """``job.cancel()``: stop the containers and keep the job service, CANCELLED, with its logs (as
    Snowflake's). A pending one ends now; a running one once its worker hears stop (next heartbeat)."""
    if row.kind != JOB:
        raise InvalidArgumentError(
            f"{row.name} is a service, not a job service: stop it with ALTER SERVICE ... SUSPEND or DROP SERVICE."
        )
    if row.status in TERMINAL or row.status == JobStatus.CANCELLING:
        return
    now = utcnow()
    # Compare-and-set, so a worker claiming it at this moment either loses or is told to stop.
    ended = session.execute(
        update(ServiceRow)
        .where(ServiceRow.id == row.id, ServiceRow.status == JobStatus.PENDING)
        .values(status=JobStatus.CANCELLED, message=_CANCELLED_MESSAGE, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    if ended.rowcount == 1:  # type: ignore[attr-defined]
        session.refresh(row)
        row.containers = {
            name: {"status": JobStatus.CANCELLED, "message": _CANCELLED_MESSAGE} for name in row.containers
        }
        _mirror(session, row, status=JobStatus.CANCELLED, message=_CANCELLED_MESSAGE, finished_at=now)
    else:
        session.refresh(row)
        if row.status in TERMINAL or row.status == JobStatus.CANCELLING:
            return
        row.status = JobStatus.CANCELLING
        _mirror(session, row, status=JobStatus.CANCELLING)
    session.flush()


def delete_job_service(session: Session, row: ServiceRow) -> bool:
    """``delete_job()`` of a job service: DROP SERVICE, its job hidden at once (as Snowflake's, which
    drops the service). True when it is gone now; a running one goes once its worker has stopped it."""
    if drop_service(session, row):
        return True
    _mirror(session, row, deleted_at=utcnow())
    session.flush()
    return False


def describe_record(row: ServiceRow) -> dict[str, Any]:
    """One ``DESCRIBE SERVICE`` row of a long-running service, in the columns a job service is described
    with (SHOW JOB SERVICES' columns, ``spec`` after ``compute_pool``); what runbatch lacks is None."""
    schema = row.schema
    running = row.status in (JobStatus.RUNNING, READY)
    stamps = [t for t in (row.created_at, row.started_at, row.finished_at) if t]
    return {
        "name": row.name,
        "status": row.status,
        "database_name": schema.database.name,
        "schema_name": schema.name,
        "owner": row.owner,
        "compute_pool": row.compute_pool,
        "spec": row.spec_text,
        "dns_name": None,
        "current_instances": 1 if running else 0,
        "target_instances": 0 if row.status == SUSPENDED else row.max_instances,
        "min_ready_instances": row.min_instances,
        "min_instances": row.min_instances,
        "max_instances": row.max_instances,
        "auto_resume": False,
        "external_access_integrations": None,
        "created_on": row.created_at,
        "updated_on": max(stamps),
        "resumed_on": row.started_at,
        "suspended_on": row.finished_at if row.status == SUSPENDED else None,
        "auto_suspend_secs": 0,
        "comment": None,
        "owner_role_type": "ROLE",
        "query_warehouse": None,
        "is_job": row.kind == JOB,
        "is_async_job": False,
        "spec_digest": hashlib.sha256(row.spec_text.encode()).hexdigest(),
        "is_upgrading": False,
        "managing_object_domain": None,
        "managing_object_name": None,
    }


def status_entries(row: ServiceRow) -> str:
    """``SYSTEM$GET_SERVICE_STATUS``: a JSON array with one entry per container, as Snowflake answers."""
    images = {c["name"]: c["image"] for c in row.specification["spec"]["spec"]["containers"]}
    entries = []
    for name, state in row.containers.items():
        entry: dict[str, Any] = {
            "status": state.get("status", row.status),
            "message": state.get("message") or _default_message(state.get("status", row.status)),
            "containerName": name,
            "instanceId": "0",
            "serviceName": row.name,
            "image": images.get(name, ""),
            "restartCount": state.get("restarts", max(0, row.attempt - 1)),
            "startTime": row.started_at.isoformat() if row.started_at else "",
        }
        if state.get("exit_code") is not None:
            entry["exitCode"] = state["exit_code"]
        entries.append(entry)
    return json.dumps(entries)


def _default_message(status: str) -> str:
    return {
        JobStatus.PENDING: "Pending scheduling",
        JobStatus.RUNNING: "Running",
        READY: "Running",
        JobStatus.DONE: "Completed successfully",
        JobStatus.FAILED: "Failed",
        JobStatus.CANCELLING: "Stopping",
        SUSPENDING: "Suspending",
        SUSPENDED: "Suspended",
    }.get(status, status)
