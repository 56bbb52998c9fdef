"""The DAG scheduler: a loop in every control plane process that fires due schedule slots and
runs what it claims.

Each pass (one replica at a time on Postgres, under an advisory lock, as the reaper's):

1. fires every due slot: moves the DAG's ``next_slot_at`` past it with a compare-and-set and
   records a run for the slot; ``dag_runs`` is unique on (dag, slot), so even two schedulers
   that both got past the lock could not record one slot twice (catch-up policy:
   ``server.dags.schedule``);
2. fails runs whose process stopped heartbeating (it died mid-run);
3. claims runs waiting to start (fired slots, EXECUTE requests) with a compare-and-set and
   hands them to this process's executor, which heartbeats them while they run.

Slots are stored, not kept in memory, so a restart loses none: the first pass afterwards fires
what came due meanwhile. The loop sleeps until the earliest next slot (at most
``RUNBATCH_MAINTENANCE_INTERVAL_S``), so slots fire on time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError

from runbatch.errors import InvalidArgumentError
from server.control_plane import ControlPlane
from server.dags.runner import RunExecutor
from server.dags.schedule import Slots
from server.dags.service import suspend_dag
from server.dags.states import TERMINAL_RUN_STATES, DagState, RunState, TaskRunState, transition_run
from server.db.tables import DagRow, DagRunRow, DagTaskRunRow, utcnow

__all__ = ["Scheduler", "claim_runs", "fail_stale_runs", "fire_due"]

log = logging.getLogger("runbatch.server.dags")

_ADVISORY_LOCK = 0x72756E64  # "rund": one scheduler pass at a time across replicas
_MIN_PAUSE_S = 0.05
_DUE_PAUSE_S = 0.25
# Ended runs are kept this long, then pruned (Snowflake's TASK_HISTORY keeps a week; we keep more).
RUN_HISTORY = timedelta(days=30)
_PRUNE_EVERY = timedelta(minutes=10)


@contextlib.contextmanager
def _exclusive(cp: ControlPlane) -> Iterator[bool]:
    engine = cp.engine
    if engine.dialect.name != "postgresql":
        yield True  # SQLite: BEGIN IMMEDIATE serializes writers; the compare-and-sets do the rest
        return
    with engine.connect() as conn:
        got = bool(conn.execute(select(func.pg_try_advisory_lock(_ADVISORY_LOCK))).scalar())
        try:
            yield got
        finally:
            if got:
                conn.execute(select(func.pg_advisory_unlock(_ADVISORY_LOCK)))
            conn.commit()


def fire_due(cp: ControlPlane, now: datetime) -> list[uuid.UUID]:
    """Record a run for each DAG whose next slot has come; returns the runs recorded."""
    with cp.read_sessionmaker() as session:
        due_ids = list(
            session.scalars(
                select(DagRow.id).where(DagRow.state == DagState.STARTED, DagRow.next_slot_at <= now)
            )
        )
    fired: list[uuid.UUID] = []
    for dag_id in due_ids:
        try:
            run_id = _fire(cp, dag_id, now)
        except InvalidArgumentError as exc:
            _suspend_unschedulable(cp, dag_id, exc.message)
            continue
        except Exception:
            log.exception("could not fire the due slot of task graph %s; trying again next pass", dag_id)
            continue
        if run_id is not None:
            fired.append(run_id)
    return fired


def _suspend_unschedulable(cp: ControlPlane, dag_id: uuid.UUID, reason: str) -> None:
    """A stored schedule that no longer evaluates (e.g. a time zone gone from the system) stops, loudly."""
    log.error("task graph %s suspended: its schedule cannot be evaluated: %s", dag_id, reason)
    with cp.sessionmaker() as session:
        dag = session.get(DagRow, dag_id)
        if dag is not None:
            suspend_dag(dag, f"Suspended: its schedule cannot be evaluated ({reason}).")
            session.commit()


def _fire(cp: ControlPlane, dag_id: uuid.UUID, now: datetime) -> uuid.UUID | None:
    """Take the DAG's due slot (compare-and-set on ``next_slot_at``) and record its run."""
    with cp.sessionmaker() as session:
        dag = session.get(DagRow, dag_id)
        if dag is None or dag.state != DagState.STARTED or dag.next_slot_at is None:
            return None
        first_unfired = dag.next_slot_at
        slots = Slots.of(dag.schedule, dag.schedule_anchor_at)
        due = None if slots is None else slots.due(first_unfired, now)
        if due is None:
            return None
        moved = session.execute(
            update(DagRow)
            .where(DagRow.id == dag_id, DagRow.next_slot_at == first_unfired)
            .values(next_slot_at=due.next)
            .execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if moved != 1:
            session.rollback()  # another scheduler took it first
            return None
        busy = not dag.allow_overlapping_execution and session.scalar(
            select(func.count()).where(
                DagRunRow.dag_id == dag_id,
                DagRunRow.state.in_([RunState.SCHEDULED, RunState.EXECUTING]),
            )
        )
        run = DagRunRow(
            id=uuid.uuid4(),
            dag_id=dag_id,
            trigger="SCHEDULE",
            slot_at=due.slot,
            scheduled_at=due.slot,
            state=RunState.SKIPPED if busy else RunState.SCHEDULED,
            missed_slots=due.missed,
            graph_version=dag.graph_version,
            completed_at=now if busy else None,
            first_error_message=(
                "Skipped: the previous run was still executing and the task graph does not allow "
                "overlapping runs (allow_overlapping_execution)."
                if busy
                else None
            ),
        )
        session.add(run)
        try:
            session.commit()
        except IntegrityError:
            session.rollback()
            log.info("slot %s of task graph %s was already fired", due.slot, dag.name)
            return None
        if due.missed:
            log.warning(
                "task graph %s: %d slot(s) before %s passed while no scheduler ran; running the latest only",
                dag.name,
                due.missed,
                due.slot,
            )
        return run.id


def fail_stale_runs(cp: ControlPlane, now: datetime) -> int:
    """Fail runs whose process stopped heartbeating: it died (or froze) in the middle of them."""
    timeout = cp.settings.heartbeat_timeout_s
    cutoff = now - timedelta(seconds=timeout)
    failed = 0
    with cp.sessionmaker() as session:
        stale = list(
            session.scalars(
                select(DagRunRow).where(
                    DagRunRow.state == RunState.EXECUTING, DagRunRow.heartbeat_at < cutoff
                )
            )
        )
        for run in stale:
            message = (
                f"The control plane process running this run ({run.owner}) stopped: no heartbeat for "
                f"{timeout:.0f}s."
            )
            executing = [t for t in run.task_runs if t.state == TaskRunState.EXECUTING]
            if not transition_run(
                session,
                run.id,
                from_={RunState.EXECUTING},
                to=RunState.FAILED,
                held_by=run.owner,
                completed_at=now,
                first_error_task_name=f"{run.dag.name}${executing[0].name}" if executing else None,
                first_error_message=message,
            ):
                continue
            session.execute(
                update(DagTaskRunRow)
                .where(DagTaskRunRow.run_id == run.id, DagTaskRunRow.state == TaskRunState.EXECUTING)
                .values(state=TaskRunState.FAILED, error_message=message, completed_at=now)
            )
            failed += 1
        session.commit()
    return failed


def claim_runs(cp: ControlPlane, owner: str, now: datetime) -> list[uuid.UUID]:
    """Take every run waiting to start, oldest first, for this process."""
    with cp.read_sessionmaker() as session:
        waiting = list(
            session.scalars(
                select(DagRunRow.id)
                .where(DagRunRow.state == RunState.SCHEDULED)
                .order_by(DagRunRow.scheduled_at)
            )
        )
    claimed = []
    for run_id in waiting:
        with cp.sessionmaker() as session:
            if transition_run(
                session,
                run_id,
                from_={RunState.SCHEDULED},
                to=RunState.EXECUTING,
                owner=owner,
                started_at=now,
                heartbeat_at=now,
            ):
                claimed.append(run_id)
            else:
                continue
            session.commit()
    return claimed


class Scheduler:
    def __init__(
        self, cp: ControlPlane, *, owner: str | None = None, clock: Callable[[], datetime] = utcnow
    ) -> None:
        self.cp = cp
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self.runs = RunExecutor(cp, self.owner)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pruned_at: datetime | None = None

    def start(self) -> None:
        if self.cp.settings.maintenance_interval_s <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="runbatch-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self.runs.stop()

    def wake(self) -> None:
        """Run a pass now (a run was requested, a DAG deployed or resumed)."""
        self._wake.set()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.run_once()
            except Exception:
                log.exception("scheduler pass failed; trying again")
            self._wake.wait(self._pause())
            self._wake.clear()

    def _pause(self) -> float:
        interval = self.cp.settings.maintenance_interval_s
        try:
            with self.cp.read_sessionmaker() as session:
                earliest = session.scalar(
                    select(func.min(DagRow.next_slot_at)).where(DagRow.state == DagState.STARTED)
                )
        except Exception:
            return interval
        if earliest is None:
            return interval
        ahead = (earliest - self.clock()).total_seconds()
        if ahead <= 0:
            # Still due after a pass: another replica holds the lock, or the slot came just now.
            return min(interval, _DUE_PAUSE_S)
        return min(interval, max(_MIN_PAUSE_S, ahead))

    def run_once(self, now: datetime | None = None) -> list[uuid.UUID]:
        """One pass; returns the runs this process claimed (and started executing)."""
        now = now or self.clock()
        self.runs.heartbeat(now, every_s=self.cp.settings.heartbeat_timeout_s / 4)
        with _exclusive(self.cp) as mine:
            if not mine:
                return []
            fire_due(self.cp, now)
            fail_stale_runs(self.cp, now)
            claimed = claim_runs(self.cp, self.owner, now)
            self._prune(now)
        for run_id in claimed:
            self.runs.submit(run_id)
        return claimed

    def _prune(self, now: datetime) -> None:
        if self._pruned_at is not None and now - self._pruned_at < _PRUNE_EVERY:
            return
        self._pruned_at = now
        with self.cp.sessionmaker() as session:
            session.execute(
                delete(DagRunRow).where(
                    DagRunRow.state.in_([s.value for s in TERMINAL_RUN_STATES]),
                    DagRunRow.completed_at < now - RUN_HISTORY,
                )
            )
            session.commit()
