"""ORM tables. "Model" means an ML model in this project, so table classes end in ``Row``.

SQL stays portable between SQLite (embedded default) and Postgres (cluster): JSON columns,
UUIDs through ``sqlalchemy.Uuid``, timestamps stored as UTC through ``UTCDateTime``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    Uuid,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "ApiTokenRow",
    "Base",
    "ComputePoolRow",
    "DagRow",
    "DagRunRow",
    "DagTaskRow",
    "DagTaskRunRow",
    "DatabaseRow",
    "FileFormatRow",
    "FutureGrantRow",
    "GrantRow",
    "IdempotencyKeyRow",
    "ImageRepositoryRow",
    "JobLogRow",
    "JobRow",
    "ModelAliasRow",
    "ModelMonitorMetricRow",
    "ModelMonitorRow",
    "ModelRow",
    "ModelTagRow",
    "ModelVersionRow",
    "RoleRow",
    "SchemaRow",
    "ServiceFunctionRow",
    "ServiceLogRow",
    "ServiceRow",
    "ShardRow",
    "StageRow",
    "TableRow",
    "UTCDateTime",
    "UserRoleRow",
    "UserRow",
    "WorkerRow",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every dialect (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTCDateTime column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


class DatabaseRow(Base):
    __tablename__ = "databases"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)

    schemas: Mapped[list[SchemaRow]] = relationship(back_populates="database", cascade="all, delete-orphan")


class SchemaRow(Base):
    __tablename__ = "schemas"
    __table_args__ = (UniqueConstraint("database_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    database_id: Mapped[int] = mapped_column(ForeignKey("databases.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)

    database: Mapped[DatabaseRow] = relationship(back_populates="schemas")


class StageRow(Base):
    __tablename__ = "stages"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)
    # External stages only: where the files are, and the credentials to reach them (encrypted).
    url: Mapped[str | None] = mapped_column(String(2048))
    endpoint: Mapped[str | None] = mapped_column(String(1024))
    region: Mapped[str | None] = mapped_column(String(64))
    credentials: Mapped[str | None] = mapped_column(Text)

    schema: Mapped[SchemaRow] = relationship()


class TableRow(Base):
    """A table: Parquet files under ``location`` in the control plane's storage.

    Overwriting writes a new location and swaps it here in one transaction, so readers see the
    old files or the new ones, never a mix; the old location is purged after the commit.
    """

    __tablename__ = "tables"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)
    location: Mapped[str] = mapped_column(String(2048))
    row_count: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)

    schema: Mapped[SchemaRow] = relationship()


class WorkerRow(Base):
    """A worker process that serves compute pools; live while its heartbeat is fresh."""

    __tablename__ = "workers"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    host: Mapped[str] = mapped_column(String(255))
    pools: Mapped[list[Any]] = mapped_column(JSON)
    executor: Mapped[str] = mapped_column(String(32))
    slots: Mapped[int] = mapped_column(Integer)
    cpus: Mapped[int] = mapped_column(Integer)
    memory_bytes: Mapped[int] = mapped_column(BigInteger)
    gpus: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)
    stopped_at: Mapped[datetime | None] = mapped_column()


class ComputePoolRow(Base):
    __tablename__ = "compute_pools"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    instance_family: Mapped[str] = mapped_column(String(64))
    min_nodes: Mapped[int] = mapped_column(Integer)
    max_nodes: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)


class ModelRow(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    default_version: Mapped[str | None] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)

    schema: Mapped[SchemaRow] = relationship()
    versions: Mapped[list[ModelVersionRow]] = relationship(
        back_populates="model", cascade="all, delete-orphan", order_by="ModelVersionRow.id"
    )
    aliases: Mapped[list[ModelAliasRow]] = relationship(cascade="all, delete-orphan")
    tags: Mapped[list[ModelTagRow]] = relationship(cascade="all, delete-orphan")


class ModelVersionRow(Base):
    """An immutable artifact folder on the registry storage plus its mutable metadata."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    artifact_key: Mapped[str] = mapped_column(String(1024))
    model_type: Mapped[str] = mapped_column(String(64))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_on: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[ModelRow] = relationship(back_populates="versions")


class ModelAliasRow(Base):
    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    version_name: Mapped[str] = mapped_column(String(255))


class ModelTagRow(Base):
    __tablename__ = "model_tags"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(767), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class JobRow(Base):
    """A batch inference job. Its shards are the source of truth for progress."""

    __tablename__ = "jobs"
    __table_args__ = (
        # A deleted job frees its name, as a dropped Snowflake service does.
        Index(
            "uq_jobs_live_name",
            "schema_id",
            "name",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_jobs_status", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(32))
    phase: Mapped[str] = mapped_column(String(32))
    phase_at: Mapped[datetime] = mapped_column(default=utcnow)
    message: Mapped[str] = mapped_column(Text, default="")
    owner: Mapped[str] = mapped_column(String(255))
    compute_pool: Mapped[str] = mapped_column(String(255))
    model_name: Mapped[str] = mapped_column(String(1024))
    version_name: Mapped[str] = mapped_column(String(255))
    function_name: Mapped[str] = mapped_column(String(255))
    spec: Mapped[dict[str, Any]] = mapped_column(JSON)
    output_location: Mapped[str] = mapped_column(String(2048))
    input_location: Mapped[str] = mapped_column(String(2048))
    replicas: Mapped[int] = mapped_column(Integer)
    rows_total: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    input_ready_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    deleted_at: Mapped[datetime | None] = mapped_column()

    schema: Mapped[SchemaRow] = relationship()
    shards: Mapped[list[ShardRow]] = relationship(
        back_populates="job", cascade="all, delete-orphan", order_by="ShardRow.index"
    )


class ShardRow(Base):
    """One slice of a job's input, run by one runtime process at a time."""

    __tablename__ = "shards"
    __table_args__ = (UniqueConstraint("job_id", "index"), Index("ix_shards_state", "state"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    slices: Mapped[list[Any]] = mapped_column(JSON)
    rows_total: Mapped[int] = mapped_column(BigInteger)
    rows_done: Mapped[int] = mapped_column(BigInteger, default=0)
    rows_failed: Mapped[int] = mapped_column(BigInteger, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    token_hash: Mapped[str | None] = mapped_column(String(64))
    not_before: Mapped[datetime | None] = mapped_column()
    dispatched_at: Mapped[datetime | None] = mapped_column()
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    message: Mapped[str] = mapped_column(Text, default="")
    output_files: Mapped[list[Any]] = mapped_column(JSON, default=list)

    job: Mapped[JobRow] = relationship(back_populates="shards")


class JobLogRow(Base):
    __tablename__ = "job_logs"
    __table_args__ = (Index("ix_job_logs_job_instance", "job_id", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    instance_id: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    logged_at: Mapped[datetime] = mapped_column(default=utcnow)
    line: Mapped[str] = mapped_column(Text)


class ApiTokenRow(Base):
    """A bearer token, stored as the SHA-256 of its secret (tokens are 256-bit random)."""

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(255))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column()
    revoked_at: Mapped[datetime | None] = mapped_column()
    # NULL for tokens minted for a process (a DAG's Python task), which act with their ``role``.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)


class UserRow(Base):
    """A person or tool that logs in; the password is stored as an scrypt hash (see server.auth.passwords)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    default_role: Mapped[str] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    created_on: Mapped[datetime] = mapped_column(default=utcnow)


class RoleRow(Base):
    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    comment: Mapped[str | None] = mapped_column(Text)
    created_on: Mapped[datetime] = mapped_column(default=utcnow)


class UserRoleRow(Base):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), primary_key=True)


class GrantRow(Base):
    """A privilege on one object held by a role. One object column is set, per ``object_type``;
    the foreign keys drop the grant with its object, as Snowflake does."""

    __tablename__ = "grants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"), index=True)
    privilege: Mapped[str] = mapped_column(String(32))
    object_type: Mapped[str] = mapped_column(String(32))
    model_id: Mapped[int | None] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    compute_pool_id: Mapped[int | None] = mapped_column(ForeignKey("compute_pools.id", ondelete="CASCADE"))
    stage_id: Mapped[int | None] = mapped_column(ForeignKey("stages.id", ondelete="CASCADE"))
    image_repository_id: Mapped[int | None] = mapped_column(
        ForeignKey("image_repositories.id", ondelete="CASCADE")
    )
    granted_by: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)


class FutureGrantRow(Base):
    """GRANT ... ON FUTURE MODELS IN SCHEMA: copied into a GrantRow when a model is created there."""

    __tablename__ = "future_grants"
    __table_args__ = (UniqueConstraint("schema_id", "object_type", "privilege", "role_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    object_type: Mapped[str] = mapped_column(String(32))
    privilege: Mapped[str] = mapped_column(String(32))
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id", ondelete="CASCADE"))
    granted_by: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)


class DagRow(Base):
    """A task graph (Snowflake's root task): its schedule and, through its tasks, what each run does.

    ``next_slot_at`` is the first schedule slot no scheduler has fired yet; schedulers move it
    forward with a compare-and-set, so a slot is taken once whatever the number of replicas.
    """

    __tablename__ = "dags"
    __table_args__ = (UniqueConstraint("schema_id", "name"), Index("ix_dags_next_slot_at", "next_slot_at"))

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    schedule: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # Interval schedules count their slots from here (the last resume); cron slots ignore it.
    schedule_anchor_at: Mapped[datetime | None] = mapped_column()
    next_slot_at: Mapped[datetime | None] = mapped_column()
    graph_version: Mapped[int] = mapped_column(Integer, default=1)
    warehouse: Mapped[str | None] = mapped_column(String(255))
    comment: Mapped[str | None] = mapped_column(Text)
    allow_overlapping_execution: Mapped[bool] = mapped_column(Boolean, default=False)
    user_task_timeout_ms: Mapped[int | None] = mapped_column(BigInteger)
    suspend_task_after_num_failures: Mapped[int | None] = mapped_column(Integer)
    config: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    session_parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    use_func_return_value: Mapped[bool] = mapped_column(Boolean, default=False)
    last_suspended_reason: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)

    schema: Mapped[SchemaRow] = relationship()
    tasks: Mapped[list[DagTaskRow]] = relationship(
        back_populates="dag", cascade="all, delete-orphan", order_by="DagTaskRow.position"
    )


class DagTaskRow(Base):
    """One child task of a DAG: SQL text, or a Python callable pickled by value."""

    __tablename__ = "dag_tasks"
    __table_args__ = (UniqueConstraint("dag_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dags.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    sql: Mapped[str | None] = mapped_column(Text)
    python: Mapped[bytes | None] = mapped_column(LargeBinary)
    predecessors: Mapped[list[Any]] = mapped_column(JSON)
    is_finalizer: Mapped[bool] = mapped_column(Boolean, default=False)
    comment: Mapped[str | None] = mapped_column(Text)
    warehouse: Mapped[str | None] = mapped_column(String(255))
    user_task_timeout_ms: Mapped[int | None] = mapped_column(BigInteger)
    session_parameters: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    dag: Mapped[DagRow] = relationship(back_populates="tasks")


class DagRunRow(Base):
    """One run of a DAG: a schedule slot (``slot_at``, unique per DAG) or an EXECUTE request."""

    __tablename__ = "dag_runs"
    __table_args__ = (
        # The backstop behind the scheduler's compare-and-set: a slot never fires twice.
        UniqueConstraint("dag_id", "slot_at"),
        Index("ix_dag_runs_state", "state"),
        Index("ix_dag_runs_dag_id_scheduled_at", "dag_id", "scheduled_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    dag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dags.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(16))
    slot_at: Mapped[datetime | None] = mapped_column()
    scheduled_at: Mapped[datetime] = mapped_column()
    state: Mapped[str] = mapped_column(String(16))
    missed_slots: Mapped[int] = mapped_column(Integer, default=0)
    graph_version: Mapped[int] = mapped_column(Integer)
    # The control plane process running it, and its liveness: a run whose process died is failed.
    owner: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    started_at: Mapped[datetime | None] = mapped_column()
    completed_at: Mapped[datetime | None] = mapped_column()
    first_error_task_name: Mapped[str | None] = mapped_column(String(511))
    first_error_code: Mapped[int | None] = mapped_column(Integer)
    first_error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    dag: Mapped[DagRow] = relationship()
    task_runs: Mapped[list[DagTaskRunRow]] = relationship(
        back_populates="run", cascade="all, delete-orphan", order_by="DagTaskRunRow.id"
    )


class DagTaskRunRow(Base):
    """One task's execution within a run; tasks a failure kept from running have no row (as in Snowflake)."""

    __tablename__ = "dag_task_runs"
    __table_args__ = (UniqueConstraint("run_id", "name"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("dag_runs.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    state: Mapped[str] = mapped_column(String(16))
    return_value: Mapped[str | None] = mapped_column(Text)
    error_message: Mapped[str | None] = mapped_column(Text)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column()
    job_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    log: Mapped[str] = mapped_column(Text, default="")

    run: Mapped[DagRunRow] = relationship(back_populates="task_runs")


class FileFormatRow(Base):
    """A named file format (CREATE FILE FORMAT): its TYPE and the options given, checked and normalized."""

    __tablename__ = "file_formats"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    format_type: Mapped[str] = mapped_column(String(16))
    options: Mapped[dict[str, Any]] = mapped_column(JSON)
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)

    schema: Mapped[SchemaRow] = relationship()


class IdempotencyKeyRow(Base):
    """An ``Idempotency-Key`` a caller sent with a job-creating POST, and the answer it got.

    The unique (principal, key) pair is inserted before the job is created, so of concurrent
    retries exactly one creates the job; the others wait for ``response`` and replay it.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("principal", "key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    principal: Mapped[str] = mapped_column(String(255))
    key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(16))
    path: Mapped[str] = mapped_column(String(2048))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()


class ServiceRow(Base):
    """A Snowpark Container Services service or job service, with its parsed specification.

    A job service also has a ``jobs`` row (phase FINISHED from the start, so the batch finalizer
    never touches it) that mirrors its status, so it is listed, described and logged like a batch job.
    """

    __tablename__ = "services"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(16))
    compute_pool: Mapped[str] = mapped_column(String(255))
    specification: Mapped[dict[str, Any]] = mapped_column(JSON)
    spec_text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(32))
    message: Mapped[str] = mapped_column(Text, default="")
    exit_code: Mapped[int | None] = mapped_column(Integer)
    containers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # name -> {status, exit_code}
    endpoints: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # name -> "host:port" while running
    min_instances: Mapped[int] = mapped_column(Integer, default=1)
    max_instances: Mapped[int] = mapped_column(Integer, default=1)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    heartbeat_at: Mapped[datetime | None] = mapped_column()
    job_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    owner: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    # DROP SERVICE (or delete_job) of a running service: once its worker has stopped it, it is deleted;
    # a job service stopped by job.cancel() is kept, CANCELLED, with its logs.
    dropping: Mapped[bool] = mapped_column(Boolean, default=False)

    schema: Mapped[SchemaRow] = relationship()


class ModelMonitorRow(Base):
    """A model monitor (Snowflake's CREATE MODEL MONITOR): a model version's function, the source of its
    logged predictions and actuals, and how often and over what windows its metrics are computed."""

    __tablename__ = "model_monitors"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    function_name: Mapped[str] = mapped_column(String(255))
    warehouse_name: Mapped[str] = mapped_column(String(255))
    model_task: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(1024))  # qualified table, or @stage/path of Parquet files
    baseline: Mapped[str | None] = mapped_column(String(1024))
    # Column roles: timestamp, ids, predictions, actuals, segments, features.
    columns: Mapped[dict[str, Any]] = mapped_column(JSON)
    refresh_interval: Mapped[str] = mapped_column(String(64))
    aggregation_window: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), default="ACTIVE")
    comment: Mapped[str | None] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)
    last_refreshed_on: Mapped[datetime | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)

    schema: Mapped[SchemaRow] = relationship()
    version: Mapped[ModelVersionRow] = relationship()


class ModelMonitorMetricRow(Base):
    """One computed metric value: per monitor, kind, metric, column, window and segment.

    A refresh replaces a monitor's rows whole; an empty segment column is the whole population.
    """

    __tablename__ = "model_monitor_metrics"
    __table_args__ = (Index("ix_model_monitor_metrics_monitor_id_kind", "monitor_id", "kind", "metric_name"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    monitor_id: Mapped[int] = mapped_column(ForeignKey("model_monitors.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))  # DRIFT, PERFORMANCE, STAT
    metric_name: Mapped[str] = mapped_column(String(64))
    column_name: Mapped[str] = mapped_column(String(255), default="")
    segment_column: Mapped[str] = mapped_column(String(255), default="")
    segment_value: Mapped[str] = mapped_column(String(1024), default="")
    event_timestamp: Mapped[datetime] = mapped_column()
    metric_value: Mapped[float | None] = mapped_column(Float)
    count_used: Mapped[int] = mapped_column(BigInteger, default=0)
    count_unused: Mapped[int] = mapped_column(BigInteger, default=0)
    baseline_count_used: Mapped[int | None] = mapped_column(BigInteger)
    baseline_count_unused: Mapped[int | None] = mapped_column(BigInteger)


class ServiceLogRow(Base):
    """Output lines of a long-running service's containers (a job service logs to its job instead)."""

    __tablename__ = "service_logs"
    __table_args__ = (Index("ix_service_logs_service_container", "service_id", "container", "id"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    service_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("services.id", ondelete="CASCADE"))
    container: Mapped[str] = mapped_column(String(255))
    attempt: Mapped[int] = mapped_column(Integer)
    logged_at: Mapped[datetime] = mapped_column(default=utcnow)
    line: Mapped[str] = mapped_column(Text)


class ServiceFunctionRow(Base):
    """A service function (CREATE FUNCTION ... SERVICE = s ENDPOINT = e AS '/path'), callable in queries."""

    __tablename__ = "service_functions"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    arguments: Mapped[list[Any]] = mapped_column(JSON)  # [[name, type], ...] in Snowflake's type names
    returns: Mapped[str] = mapped_column(String(64))
    service: Mapped[str] = mapped_column(String(767))  # DB.SCHEMA.NAME
    endpoint: Mapped[str] = mapped_column(String(255))
    path: Mapped[str] = mapped_column(String(2048))
    max_batch_rows: Mapped[int | None] = mapped_column(Integer)
    owner: Mapped[str] = mapped_column(String(255))
    created_on: Mapped[datetime] = mapped_column(default=utcnow)

    schema: Mapped[SchemaRow] = relationship()


class ImageRepositoryRow(Base):
    """An image repository (CREATE IMAGE REPOSITORY): a namespace of the cluster's OCI registry,
    ``<registry>/<db>/<schema>/<name>`` in lower case, whose pushes and pulls the control plane's
    registry tokens authorize."""

    __tablename__ = "image_repositories"
    __table_args__ = (UniqueConstraint("schema_id", "name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    schema_id: Mapped[int] = mapped_column(ForeignKey("schemas.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    owner: Mapped[str] = mapped_column(String(255))  # the owning role
    comment: Mapped[str | None] = mapped_column(Text)
    created_on: Mapped[datetime] = mapped_column(default=utcnow)

    schema: Mapped[SchemaRow] = relationship()
