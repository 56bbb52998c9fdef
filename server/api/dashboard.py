"""Read-only views the web dashboard needs that no resource route gives: the shards running now, with
their jobs, for the compute pools page. Like every route not opened to users, it is ACCOUNTADMIN's."""

from __future__ import annotations

import uuid
from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select

from runbatch.identifiers import qualified
from server.db.tables import JobRow, ShardRow
from server.deps import SessionDep, UserDep
from server.jobs.states import ShardState

__all__ = ["router"]

router = APIRouter(prefix="/dashboard", tags=["dashboard"])


class RunningShard(BaseModel):
    job_id: str = Field(description="Fully qualified job name DB.SCHEMA.NAME")
    database_name: str
    schema_name: str
    job_name: str
    compute_pool: str
    shard_id: uuid.UUID
    index: int
    attempt: int
    worker: str | None
    rows_total: int
    rows_done: int
    rows_failed: int
    started_at: datetime | None
    heartbeat_at: datetime | None


@router.get("/running-shards")
def running_shards(session: SessionDep, _: UserDep, pool: str | None = None) -> list[RunningShard]:
    """Shards running now (on ``pool`` when given), the oldest first."""
    query = select(ShardRow).join(ShardRow.job).where(ShardRow.state == ShardState.RUNNING)
    if pool is not None:
        query = query.where(JobRow.compute_pool == pool)
    result: list[RunningShard] = []
    for shard in session.scalars(query.order_by(ShardRow.started_at, ShardRow.index)):
        job = shard.job
        database, schema = job.schema.database.name, job.schema.name
        result.append(
            RunningShard(
                job_id=qualified(database, schema, job.name),
                database_name=database,
                schema_name=schema,
                job_name=job.name,
                compute_pool=job.compute_pool,
                shard_id=shard.id,
                index=shard.index,
                attempt=shard.attempt,
                worker=shard.worker,
                rows_total=shard.rows_total,
                rows_done=shard.rows_done,
                rows_failed=shard.rows_failed,
                started_at=shard.started_at,
                heartbeat_at=shard.heartbeat_at,
            )
        )
    return result
