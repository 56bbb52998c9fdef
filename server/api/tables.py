"""Tables: ``save_as_table`` uploads (one Parquet file per write, streamed into storage)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from fastapi import APIRouter, Request, status
from fastapi.concurrency import run_in_threadpool

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import qualified
from runbatch.stage.storage import Storage
from runbatch.wire.resources import TablePublic
from server.api.uploads import receive_upload
from server.control_plane import ControlPlane
from server.deps import ControlPlaneDep, UserDep
from server.tables import service as tables
from server.tables.service import TableWrite

router = APIRouter(tags=["tables"])

_PREFIX = "/databases/{database}/schemas/{schema}/tables"


@router.put(_PREFIX + "/{table}/data", status_code=status.HTTP_201_CREATED)
async def save_table(
    database: str,
    schema: str,
    table: str,
    request: Request,
    cp: ControlPlaneDep,
    user: UserDep,
    mode: str = "errorifexists",
) -> TablePublic:
    """Store the body (one Parquet file) as the table's data: created, appended, overwritten or ignored."""
    plan = await run_in_threadpool(_plan, cp, database, schema, table, mode)
    if plan.skip:
        async for _ in request.stream():
            pass
        return await run_in_threadpool(_public, cp, database, schema, table)
    key = plan.file_key
    await receive_upload(request, cp.storage, key, qualified(database, schema, table))
    rows, size = await run_in_threadpool(_inspect, cp.storage, plan, key)
    replaced = await run_in_threadpool(_record, cp, plan, user.name, rows, size)
    if replaced is not None:
        await run_in_threadpool(cp.storage.delete_tree, replaced)
    return await run_in_threadpool(_public, cp, database, schema, table)


def _plan(cp: ControlPlane, database: str, schema: str, table: str, mode: str) -> TableWrite:
    with cp.read_sessionmaker() as session:
        return tables.plan_write(session, database, schema, table, mode)


def _inspect(storage: Storage, plan: TableWrite, key: str) -> tuple[int, int]:
    """Rows and bytes of the stored file; refuse (and delete) what is not Parquet or does not fit the table."""
    try:
        with storage.open_input_file(key) as handle:
            size = handle.size()
            meta = pq.ParquetFile(handle).metadata
            schema = meta.schema.to_arrow_schema()
        if plan.mode == "append" and plan.exists:
            _check_same_columns(storage, plan, key, schema)
    except BaseException:
        storage.delete_file(key)
        raise
    return meta.num_rows, size


def _check_same_columns(storage: Storage, plan: TableWrite, key: str, schema: pa.Schema) -> None:
    existing = next((e.key for e in storage.list(plan.location + "/") if e.key != key), None)
    if existing is None:
        return
    with storage.open_input_file(existing) as handle:
        current = pq.ParquetFile(handle).schema_arrow
    if _shape(current) != _shape(schema):
        raise InvalidArgumentError(
            f"Cannot append to {qualified(plan.database, plan.schema, plan.name)}: its columns are "
            f"{_columns(current)}, the data's are {_columns(schema)}. Use mode 'overwrite' to replace the table."
        )


def _shape(schema: pa.Schema) -> list[tuple[str, pa.DataType]]:
    # pandas writes large_string where Arrow writers write string: the same column to a reader.
    wide = {pa.large_string(): pa.string(), pa.large_binary(): pa.binary()}
    return [(f.name, wide.get(f.type, f.type)) for f in schema]


def _columns(schema: pa.Schema) -> str:
    return "(" + ", ".join(f"{f.name} {f.type}" for f in schema) + ")"


def _record(cp: ControlPlane, plan: TableWrite, owner: str, rows: int, size: int) -> str | None:
    with cp.sessionmaker() as session:
        replaced = tables.record_write(session, plan, owner=owner, rows=rows, size=size)
        session.commit()
        return replaced


def _public(cp: ControlPlane, database: str, schema: str, table: str) -> TablePublic:
    with cp.read_sessionmaker() as session:
        row = tables.get_table(session, database, schema, table)
        return TablePublic(
            name=row.name,
            database_name=database,
            schema_name=schema,
            rows=row.row_count,
            bytes=row.bytes,
            created_on=row.created_on,
            owner=row.owner,
        )
