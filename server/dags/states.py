"""States of DAGs, their runs and their task runs; run transitions are compare-and-set updates.

A run is claimed (SCHEDULED -> EXECUTING) by exactly one control plane process, and only
that process (its ``owner``) may end it, unless its heartbeat stops and a scheduler fails it.
"""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from server.db.tables import DagRunRow

__all__ = ["TERMINAL_RUN_STATES", "DagState", "RunState", "TaskRunState", "transition_run"]


class DagState(StrEnum):
    """Snowflake's root task states."""

    STARTED = "started"
    SUSPENDED = "suspended"


class RunState(StrEnum):
    SCHEDULED = "SCHEDULED"
    EXECUTING = "EXECUTING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    # A slot that came while the previous run was still executing (allow_overlapping_execution=False).
    SKIPPED = "SKIPPED"


class TaskRunState(StrEnum):
    EXECUTING = "EXECUTING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


TERMINAL_RUN_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.SKIPPED})


def transition_run(
    session: Session,
    run_id: uuid.UUID,
    *,
    from_: set[RunState],
    to: RunState,
    held_by: str | None = None,
    **values: Any,
) -> bool:
    """Move a run to ``to`` if it is in ``from_`` (and, when given, still held by ``held_by``)."""
    conditions = [DagRunRow.id == run_id, DagRunRow.state.in_([s.value for s in from_])]
    if held_by is not None:
        conditions.append(DagRunRow.owner == held_by)
    stmt = (
        update(DagRunRow)
        .where(*conditions)
        .values(state=to.value, **values)
        .execution_options(synchronize_session=False)
    )
    return session.execute(stmt).rowcount == 1  # type: ignore[attr-defined,no-any-return]
