"""Databases, schemas and compute pools. Functions flush; the caller owns the transaction."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, ConflictError, InvalidArgumentError, NotFoundError
from runbatch.identifiers import qualified
from runbatch.stage.paths import name_key
from server.db.tables import ComputePoolRow, DatabaseRow, JobRow, SchemaRow, ShardRow

__all__ = [
    "CPU_INSTANCE_FAMILIES",
    "GPU_INSTANCE_FAMILIES",
    "create_compute_pool",
    "create_database",
    "create_schema",
    "drop_compute_pool",
    "drop_database",
    "drop_schema",
    "get_compute_pool",
    "get_database",
    "get_schema",
    "list_compute_pools",
    "list_databases",
    "list_schemas",
    "storage_prefixes",
]

# Jobs in these states still read and write their schema's stages and models.
_ACTIVE_JOB_STATUSES = ("PENDING", "RUNNING", "CANCELLING")


def storage_prefixes(database: str, schema: str | None = None) -> list[str]:
    """The storage folders of a database's (or schema's) stage files, model versions and tables."""
    path = name_key(database) + (f"/{name_key(schema)}" if schema is not None else "")
    return [f"stages/{path}", f"registry/{path}", f"tables/{path}"]


def _refuse_active_jobs(session: Session, schema_ids: list[object], what: str) -> None:
    active = list(
        session.scalars(
            select(JobRow.name).where(
                JobRow.schema_id.in_(schema_ids),
                JobRow.status.in_(_ACTIVE_JOB_STATUSES),
                JobRow.deleted_at.is_(None),
            )
        )
    )
    if active:
        shown = ", ".join(sorted(active)[:5]) + (" ..." if len(active) > 5 else "")
        raise ConflictError(
            f"{what} has {len(active)} job(s) still running ({shown}); cancel them (MLJob.cancel()) or wait for "
            "them to end, then drop it."
        )


# Snowflake's instance families for SPCS compute pools.
CPU_INSTANCE_FAMILIES = frozenset(
    {
        "CPU_X64_XS",
        "CPU_X64_S",
        "CPU_X64_M",
        "CPU_X64_SL",
        "CPU_X64_L",
        "HIGHMEM_X64_S",
        "HIGHMEM_X64_M",
        "HIGHMEM_X64_SL",
        "HIGHMEM_X64_L",
    }
)
GPU_INSTANCE_FAMILIES = frozenset(
    {
        "GPU_NV_XS",
        "GPU_NV_S",
        "GPU_NV_M",
        "GPU_NV_L",
        "GPU_NV_SM",
        "GPU_NV_2M",
        "GPU_NV_3M",
        "GPU_GCP_NV_L4_1_24G",
        "GPU_GCP_NV_L4_4_24G",
        "GPU_GCP_NV_A100_8_40G",
    }
)


def get_database(session: Session, name: str) -> DatabaseRow:
    row = session.scalars(select(DatabaseRow).where(DatabaseRow.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(f"Database '{qualified(name)}' does not exist or not authorized.")
    return row


def list_databases(session: Session) -> list[DatabaseRow]:
    return list(session.scalars(select(DatabaseRow).order_by(DatabaseRow.name)))


def create_database(
    session: Session,
    name: str,
    *,
    owner: str,
    comment: str | None = None,
    if_not_exists: bool = False,
    or_replace: bool = False,
) -> tuple[DatabaseRow, bool]:
    """Create a database with its PUBLIC schema, as Snowflake does. Returns (row, created)."""
    existing = session.scalars(select(DatabaseRow).where(DatabaseRow.name == name)).one_or_none()
    if existing is not None:
        if if_not_exists:
            return existing, False
        if not or_replace:
            raise AlreadyExistsError(f"Database '{qualified(name)}' already exists.")
        _refuse_active_jobs(session, [s.id for s in existing.schemas], f"Database {qualified(name)}")
        session.delete(existing)
        session.flush()
    row = DatabaseRow(name=name, owner=owner, comment=comment)
    row.schemas.append(SchemaRow(name="PUBLIC", owner=owner))
    session.add(row)
    session.flush()
    return row, True


def drop_database(session: Session, name: str, *, if_exists: bool = False) -> bool:
    row = session.scalars(select(DatabaseRow).where(DatabaseRow.name == name)).one_or_none()
    if row is None:
        if if_exists:
            return False
        raise NotFoundError(f"Database '{qualified(name)}' does not exist or not authorized.")
    _refuse_active_jobs(session, [s.id for s in row.schemas], f"Database {qualified(name)}")
    session.delete(row)
    session.flush()
    return True


def get_schema(session: Session, database: str, name: str) -> SchemaRow:
    db = get_database(session, database)
    row = session.scalars(
        select(SchemaRow).where(SchemaRow.database_id == db.id, SchemaRow.name == name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Schema '{qualified(database, name)}' does not exist or not authorized.")
    return row


def list_schemas(session: Session, database: str) -> list[SchemaRow]:
    db = get_database(session, database)
    return list(
        session.scalars(select(SchemaRow).where(SchemaRow.database_id == db.id).order_by(SchemaRow.name))
    )


def create_schema(
    session: Session,
    database: str,
    name: str,
    *,
    owner: str,
    comment: str | None = None,
    if_not_exists: bool = False,
    or_replace: bool = False,
) -> tuple[SchemaRow, bool]:
    db = get_database(session, database)
    existing = session.scalars(
        select(SchemaRow).where(SchemaRow.database_id == db.id, SchemaRow.name == name)
    ).one_or_none()
    if existing is not None:
        if if_not_exists:
            return existing, False
        if not or_replace:
            raise AlreadyExistsError(f"Schema '{qualified(database, name)}' already exists.")
        _refuse_active_jobs(session, [existing.id], f"Schema {qualified(database, name)}")
        session.delete(existing)
        session.flush()
    row = SchemaRow(database_id=db.id, name=name, owner=owner, comment=comment)
    session.add(row)
    session.flush()
    return row, True


def drop_schema(session: Session, database: str, name: str, *, if_exists: bool = False) -> bool:
    try:
        row = get_schema(session, database, name)
    except NotFoundError:
        if if_exists:
            return False
        raise
    _refuse_active_jobs(session, [row.id], f"Schema {qualified(database, name)}")
    session.delete(row)
    session.flush()
    return True


def get_compute_pool(session: Session, name: str) -> ComputePoolRow:
    row = session.scalars(select(ComputePoolRow).where(ComputePoolRow.name == name)).one_or_none()
    if row is None:
        raise NotFoundError(
            f"Compute pool '{qualified(name)}' does not exist or not authorized. Create it with "
            f"CREATE COMPUTE POOL {qualified(name)} MIN_NODES=1 MAX_NODES=1 INSTANCE_FAMILY=CPU_X64_XS, "
            "or use SYSTEM_COMPUTE_POOL_CPU."
        )
    return row


def list_compute_pools(session: Session) -> list[ComputePoolRow]:
    return list(session.scalars(select(ComputePoolRow).order_by(ComputePoolRow.name)))


def is_gpu_family(instance_family: str) -> bool:
    return instance_family in GPU_INSTANCE_FAMILIES


def create_compute_pool(
    session: Session,
    name: str,
    *,
    owner: str,
    instance_family: str,
    min_nodes: int = 1,
    max_nodes: int = 1,
    comment: str | None = None,
    if_not_exists: bool = False,
) -> tuple[ComputePoolRow, bool]:
    family = instance_family.upper()
    if family not in CPU_INSTANCE_FAMILIES and family not in GPU_INSTANCE_FAMILIES:
        known = ", ".join(sorted(CPU_INSTANCE_FAMILIES | GPU_INSTANCE_FAMILIES))
        raise InvalidArgumentError(f"Unknown INSTANCE_FAMILY '{instance_family}'. Use one of: {known}.")
    if min_nodes < 0 or max_nodes < 1 or min_nodes > max_nodes:
        raise InvalidArgumentError(
            f"Invalid node counts MIN_NODES={min_nodes} MAX_NODES={max_nodes}: need 0 <= MIN_NODES <= MAX_NODES "
            "and MAX_NODES >= 1."
        )
    existing = session.scalars(select(ComputePoolRow).where(ComputePoolRow.name == name)).one_or_none()
    if existing is not None:
        if if_not_exists:
            return existing, False
        raise AlreadyExistsError(f"Compute pool '{qualified(name)}' already exists.")
    row = ComputePoolRow(
        name=name,
        owner=owner,
        instance_family=family,
        min_nodes=min_nodes,
        max_nodes=max_nodes,
        comment=comment,
    )
    session.add(row)
    session.flush()
    return row, True


def drop_compute_pool(session: Session, name: str, *, if_exists: bool = False) -> bool:
    row = session.scalars(select(ComputePoolRow).where(ComputePoolRow.name == name)).one_or_none()
    if row is None:
        if if_exists:
            return False
        raise NotFoundError(f"Compute pool '{qualified(name)}' does not exist or not authorized.")
    if name in ("SYSTEM_COMPUTE_POOL_CPU", "SYSTEM_COMPUTE_POOL_GPU"):
        raise InvalidArgumentError(f"The system compute pool {name} cannot be dropped.")
    session.delete(row)
    session.flush()
    return True


def running_shards(session: Session, pool: str) -> int:
    query = (
        select(func.count())
        .select_from(ShardRow)
        .join(ShardRow.job)
        .where(ShardRow.state == "RUNNING", JobRow.compute_pool == pool)
    )
    return int(session.scalar(query) or 0)
