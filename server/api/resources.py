"""Databases, schemas, stages and compute pools as REST resources."""

from fastapi import APIRouter, status
from sqlalchemy.orm import Session

from runbatch.wire.resources import (
    ComputePoolCreate,
    ComputePoolPublic,
    DatabaseCreate,
    DatabasePublic,
    SchemaCreate,
    SchemaPublic,
    StageCreate,
    StageCredentials,
    StagePublic,
)
from server.control_plane import ControlPlane
from server.db.tables import ComputePoolRow, DatabaseRow, SchemaRow, StageRow
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.resources import service as resources
from server.stages import service as stages
from server.workers import service as workers

router = APIRouter(tags=["resources"])


def _db(row: DatabaseRow) -> DatabasePublic:
    return DatabasePublic(name=row.name, comment=row.comment, owner=row.owner, created_on=row.created_on)


def _schema(row: SchemaRow, database: str) -> SchemaPublic:
    return SchemaPublic(
        database_name=database, name=row.name, comment=row.comment, owner=row.owner, created_on=row.created_on
    )


def _stage(row: StageRow, database: str, schema: str) -> StagePublic:
    return StagePublic(
        database_name=database,
        schema_name=schema,
        name=row.name,
        comment=row.comment,
        owner=row.owner,
        created_on=row.created_on,
        type="EXTERNAL" if row.url else "INTERNAL",
        url=row.url,
        endpoint=row.endpoint,
        region=row.region,
        has_credentials=row.credentials is not None,
    )


def _credentials(given: StageCredentials | None) -> dict[str, str] | None:
    if given is None:
        return None
    credentials = {"AWS_KEY_ID": given.aws_key_id, "AWS_SECRET_KEY": given.aws_secret_key.get_secret_value()}
    if given.aws_token is not None:
        credentials["AWS_TOKEN"] = given.aws_token.get_secret_value()
    return credentials


def _pool(row: ComputePoolRow, session: Session | None = None, timeout_s: float = 0) -> ComputePoolPublic:
    pool = ComputePoolPublic(
        name=row.name,
        instance_family=row.instance_family,
        min_nodes=row.min_nodes,
        max_nodes=row.max_nodes,
        comment=row.comment,
        owner=row.owner,
        created_on=row.created_on,
    )
    if session is not None:
        live = workers.live_workers(session, timeout_s, row.name)
        pool.workers = [workers.worker_public(w, timeout_s) for w in live]
        pool.state = "ACTIVE" if live else "IDLE"
        pool.running_shards = resources.running_shards(session, row.name)
    return pool


def _purge(cp: ControlPlane, keys: list[str]) -> None:
    for key in keys:
        cp.storage.delete_tree(key)


@router.get("/databases")
def list_databases(session: SessionDep, _: UserDep) -> list[DatabasePublic]:
    return [_db(r) for r in resources.list_databases(session)]


@router.post("/databases", status_code=status.HTTP_201_CREATED)
def create_database(
    body: DatabaseCreate, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> DatabasePublic:
    row, created = resources.create_database(
        session,
        body.name,
        owner=user.name,
        comment=body.comment,
        if_not_exists=body.if_not_exists,
        or_replace=body.or_replace,
    )
    session.commit()
    if created and body.or_replace:
        _purge(cp, resources.storage_prefixes(body.name))
    return _db(row)


@router.get("/databases/{database}")
def get_database(database: str, session: SessionDep, _: UserDep) -> DatabasePublic:
    return _db(resources.get_database(session, database))


@router.delete("/databases/{database}", status_code=status.HTTP_204_NO_CONTENT)
def drop_database(database: str, session: SessionDep, cp: ControlPlaneDep, _: UserDep) -> None:
    resources.drop_database(session, database)
    session.commit()
    _purge(cp, resources.storage_prefixes(database))


@router.get("/databases/{database}/schemas")
def list_schemas(database: str, session: SessionDep, _: UserDep) -> list[SchemaPublic]:
    return [_schema(r, database) for r in resources.list_schemas(session, database)]


@router.post("/databases/{database}/schemas", status_code=status.HTTP_201_CREATED)
def create_schema(
    database: str, body: SchemaCreate, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> SchemaPublic:
    row, created = resources.create_schema(
        session,
        database,
        body.name,
        owner=user.name,
        comment=body.comment,
        if_not_exists=body.if_not_exists,
        or_replace=body.or_replace,
    )
    session.commit()
    if created and body.or_replace:
        _purge(cp, resources.storage_prefixes(database, body.name))
    return _schema(row, database)


@router.get("/databases/{database}/schemas/{schema}")
def get_schema(database: str, schema: str, session: SessionDep, _: UserDep) -> SchemaPublic:
    return _schema(resources.get_schema(session, database, schema), database)


@router.delete("/databases/{database}/schemas/{schema}", status_code=status.HTTP_204_NO_CONTENT)
def drop_schema(database: str, schema: str, session: SessionDep, cp: ControlPlaneDep, _: UserDep) -> None:
    resources.drop_schema(session, database, schema)
    session.commit()
    _purge(cp, resources.storage_prefixes(database, schema))


@router.get("/databases/{database}/schemas/{schema}/stages")
def list_stages(database: str, schema: str, session: SessionDep, _: UserDep) -> list[StagePublic]:
    return [_stage(r, database, schema) for r in stages.list_stages(session, database, schema)]


@router.post("/databases/{database}/schemas/{schema}/stages", status_code=status.HTTP_201_CREATED)
def create_stage(
    database: str, schema: str, body: StageCreate, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> StagePublic:
    row, created = stages.create_stage(
        session,
        database,
        schema,
        body.name,
        owner=user.name,
        comment=body.comment,
        if_not_exists=body.if_not_exists,
        or_replace=body.or_replace,
        url=body.url,
        endpoint=body.endpoint,
        region=body.region,
        credentials=_credentials(body.credentials),
        secrets=cp.secrets,
    )
    session.commit()
    if created and body.or_replace:
        cp.storage.delete_tree(stages.stage_root_key(database, schema, body.name))
    return _stage(row, database, schema)


@router.get("/databases/{database}/schemas/{schema}/stages/{stage}")
def get_stage(database: str, schema: str, stage: str, session: SessionDep, _: UserDep) -> StagePublic:
    return _stage(stages.get_stage(session, database, schema, stage), database, schema)


@router.delete(
    "/databases/{database}/schemas/{schema}/stages/{stage}", status_code=status.HTTP_204_NO_CONTENT
)
def drop_stage(
    database: str, schema: str, stage: str, session: SessionDep, cp: ControlPlaneDep, _: UserDep
) -> None:
    stages.drop_stage(session, database, schema, stage)
    session.commit()
    cp.storage.delete_tree(stages.stage_root_key(database, schema, stage))


@router.get("/compute-pools")
def list_compute_pools(session: SessionDep, cp: ControlPlaneDep, _: UserDep) -> list[ComputePoolPublic]:
    timeout = cp.settings.worker_timeout_s
    return [_pool(r, session, timeout) for r in resources.list_compute_pools(session)]


@router.post("/compute-pools", status_code=status.HTTP_201_CREATED)
def create_compute_pool(body: ComputePoolCreate, session: SessionDep, user: UserDep) -> ComputePoolPublic:
    row, _ = resources.create_compute_pool(
        session,
        body.name,
        owner=user.name,
        instance_family=body.instance_family,
        min_nodes=body.min_nodes,
        max_nodes=body.max_nodes,
        comment=body.comment,
        if_not_exists=body.if_not_exists,
    )
    session.commit()
    return _pool(row)


@router.get("/compute-pools/{name}")
def get_compute_pool(name: str, session: SessionDep, cp: ControlPlaneDep, _: UserDep) -> ComputePoolPublic:
    """A pool with its live workers (host, pools, CPUs, memory, GPUs) and how many shards run on it."""
    return _pool(resources.get_compute_pool(session, name), session, cp.settings.worker_timeout_s)


@router.delete("/compute-pools/{name}", status_code=status.HTTP_204_NO_CONTENT)
def drop_compute_pool(name: str, session: SessionDep, _: UserDep) -> None:
    resources.drop_compute_pool(session, name)
    session.commit()
