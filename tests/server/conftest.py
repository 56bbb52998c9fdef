from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from migrations import upgrade_to_head
from server.app import build_control_plane
from server.control_plane import ControlPlane
from server.db.engine import make_engine, make_sessionmaker
from server.db.tables import JobRow, ShardRow
from server.jobs.states import JobPhase, JobStatus, ShardState
from server.resources.service import create_database
from server.settings import ServerSettings


@pytest.fixture
def db_session(tmp_path: Path) -> Iterator[Session]:
    """A fresh SQLite metadata database migrated to head."""
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    upgrade_to_head(engine)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()


class RecordingDispatcher:
    """A dispatcher seam: records what would be sent; ``queued`` is what its queue reports."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, list[uuid.UUID]]] = []
        self.queued: int | None = 0

    def dispatch(self, pool: str, shard_ids: list[uuid.UUID]) -> None:
        self.sent.append((pool, shard_ids))

    def pending_messages(self, pool: str) -> int | None:
        return self.queued


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[ControlPlane]:
    """A control plane on a fresh SQLite database and local storage, no workers attached."""
    settings = ServerSettings(home=tmp_path, heartbeat_timeout_s=30, max_shard_attempts=2)
    control_plane = build_control_plane(settings, RecordingDispatcher())
    upgrade_to_head(control_plane.engine)
    yield control_plane
    control_plane.engine.dispose()


OUTPUT_KEY = "stages/D/PUBLIC/S/out"


def add_job(
    session: Session,
    *,
    status: JobStatus = JobStatus.PENDING,
    phase: JobPhase = JobPhase.QUEUED,
    shard: ShardRow | None = None,
    rows_total: int | None = None,
) -> JobRow:
    """A one-shard job writing to ``OUTPUT_KEY``, in a new database; flushed, not committed."""
    db, _ = create_database(session, f"D{uuid.uuid4().hex[:6].upper()}", owner="t")
    job = JobRow(
        schema_id=db.schemas[0].id,
        name="J",
        status=status,
        phase=phase,
        owner="t",
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        model_name="M",
        version_name="V",
        function_name="predict",
        spec={"output_key": OUTPUT_KEY, "temporary_key": f"{OUTPUT_KEY}/_temporary", "request": {}},
        output_location="@D.PUBLIC.S/out/",
        input_location="@D.PUBLIC.S/in/",
        replicas=1,
        rows_total=rows_total,
    )
    job.shards.append(
        shard
        or ShardRow(index=0, state=ShardState.PENDING, attempt=0, max_attempts=3, slices=[], rows_total=1)
    )
    session.add(job)
    session.flush()
    return job
