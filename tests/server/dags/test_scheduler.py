"""The scheduler on a real metadata database: slots fire on time and once, missed ones are caught
up once, runs execute their SQL tasks, dead runs fail; two schedulers on one Postgres."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from migrations import upgrade_to_head
from runbatch.wire.dags import DagCreate, DagSchedule, DagTaskCreate
from server.app import build_control_plane
from server.control_plane import ControlPlane
from server.dags import service as dags
from server.dags.scheduler import Scheduler, claim_runs, fail_stale_runs, fire_due
from server.db.tables import DagRow, DagRunRow, DagTaskRunRow
from server.resources.service import create_database
from server.settings import ServerSettings
from server.stages import service as stages
from tests.services import PostgresDatabase

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def _s(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _sql(name: str, sql: str = "SELECT 1", *preds: str, finalizer: bool = False) -> DagTaskCreate:
    return DagTaskCreate(name=name, kind="sql", sql=sql, predecessors=list(preds), is_finalizer=finalizer)


def _deploy(cp: ControlPlane, body: DagCreate, now: datetime = T0) -> uuid.UUID:
    with cp.sessionmaker() as session:
        create_database(session, "D", owner="alice", if_not_exists=True)
        dag, _ = dags.deploy_dag(session, "D", "PUBLIC", body, owner="alice", now=now)
        session.commit()
        return dag.id


def _runs(cp: ControlPlane, dag_id: uuid.UUID) -> list[tuple[datetime | None, str, int, str]]:
    with cp.read_sessionmaker() as session:
        rows = session.scalars(
            select(DagRunRow).where(DagRunRow.dag_id == dag_id).order_by(DagRunRow.scheduled_at)
        )
        return [(r.slot_at, r.state, r.missed_slots, r.trigger) for r in rows]


def _settle(scheduler: Scheduler, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while scheduler.runs.active():
        assert time.monotonic() < deadline, "runs did not finish"
        time.sleep(0.05)


@pytest.fixture
def scheduler(cp: ControlPlane) -> Iterator[Scheduler]:
    made = Scheduler(cp, owner="test-scheduler")
    yield made
    made.runs.stop()


def test_slots_fire_on_time_and_once(cp: ControlPlane, scheduler: Scheduler) -> None:
    dag_id = _deploy(cp, DagCreate(name="N", schedule=DagSchedule(interval_s=2), tasks=[_sql("A")]))
    assert scheduler.run_once(_s(1.999)) == []
    first = scheduler.run_once(_s(2))
    assert len(first) == 1
    _settle(scheduler)
    assert scheduler.run_once(_s(2.5)) == []
    assert scheduler.run_once(_s(3.99)) == []
    assert len(scheduler.run_once(_s(4))) == 1
    _settle(scheduler)
    assert _runs(cp, dag_id) == [
        (_s(2), "SUCCEEDED", 0, "SCHEDULE"),
        (_s(4), "SUCCEEDED", 0, "SCHEDULE"),
    ]
    with cp.read_sessionmaker() as session:
        dag = session.get(DagRow, dag_id)
        assert dag is not None and dag.next_slot_at == _s(6)


def test_missed_slots_run_once_and_are_counted(cp: ControlPlane) -> None:
    dag_id = _deploy(cp, DagCreate(name="N", schedule=DagSchedule(interval_s=2), tasks=[_sql("A")]))
    fired = fire_due(cp, _s(9.5))  # slots 2, 4, 6 and 8 passed with no scheduler running
    assert len(fired) == 1
    assert _runs(cp, dag_id) == [(_s(8), "SCHEDULED", 3, "SCHEDULE")]
    assert fire_due(cp, _s(9.9)) == []
    assert len(fire_due(cp, _s(10))) == 1
    assert [r[0] for r in _runs(cp, dag_id)] == [_s(8), _s(10)]


def test_cron_catch_up(cp: ControlPlane) -> None:
    dag_id = _deploy(cp, DagCreate(name="C", schedule=DagSchedule(cron="*/10 * * * *", timezone="UTC")))
    assert len(fire_due(cp, _s(3600 + 5))) == 1
    # 12:10 ... 12:50 missed, 13:00 runs; the next slot is 13:10.
    assert _runs(cp, dag_id) == [(_s(3600), "SCHEDULED", 5, "SCHEDULE")]
    with cp.read_sessionmaker() as session:
        dag = session.get(DagRow, dag_id)
        assert dag is not None and dag.next_slot_at == _s(4200)


def test_a_slot_that_finds_a_run_in_progress_is_skipped(cp: ControlPlane) -> None:
    dag_id = _deploy(cp, DagCreate(name="N", schedule=DagSchedule(interval_s=2), tasks=[_sql("A")]))
    with cp.sessionmaker() as session:
        dags.execute_dag(session, dags.get_dag(session, "D", "PUBLIC", "N"), _s(1))
        session.commit()
    fire_due(cp, _s(2))
    runs = _runs(cp, dag_id)
    assert runs == [(None, "SCHEDULED", 0, "EXECUTE"), (_s(2), "SKIPPED", 0, "SCHEDULE")]
    with cp.read_sessionmaker() as session:
        skipped = session.scalars(select(DagRunRow).where(DagRunRow.state == "SKIPPED")).one()
        assert skipped.first_error_message is not None
        assert skipped.first_error_message.startswith("Skipped: the previous run was still executing")
        session.get(DagRow, dag_id).allow_overlapping_execution = True  # type: ignore[union-attr]
    with cp.sessionmaker() as session:
        row = session.get(DagRow, dag_id)
        assert row is not None
        row.allow_overlapping_execution = True
        session.commit()
    fire_due(cp, _s(4))
    assert _runs(cp, dag_id)[-1] == (_s(4), "SCHEDULED", 0, "SCHEDULE")


def test_the_database_refuses_a_second_run_for_a_slot(cp: ControlPlane) -> None:
    dag_id = _deploy(cp, DagCreate(name="N", schedule=DagSchedule(interval_s=2)))
    fire_due(cp, _s(2))
    with cp.sessionmaker() as session:
        session.add(
            DagRunRow(
                dag_id=dag_id,
                trigger="SCHEDULE",
                slot_at=_s(2),
                scheduled_at=_s(2),
                state="SCHEDULED",
                graph_version=1,
            )
        )
        with pytest.raises(IntegrityError):
            session.commit()


def test_sql_tasks_pass_values_and_a_failure_stops_its_successors(
    cp: ControlPlane, scheduler: Scheduler
) -> None:
    tasks = [
        _sql("A", "CALL SYSTEM$SET_RETURN_VALUE('it''s 42')"),
        _sql("B", "SELECT SYSTEM$SET_RETURN_VALUE(SYSTEM$GET_PREDECESSOR_RETURN_VALUE('G$A'))", "A"),
        _sql("C", "SELECT * FROM NO_SUCH_TABLE", "A"),
        _sql("D", "SELECT 1", "C"),
        _sql("F", "SELECT 2", finalizer=True),
    ]
    dag_id = _deploy(cp, DagCreate(name="G", tasks=tasks))
    with cp.sessionmaker() as session:
        run = dags.execute_dag(session, dags.get_dag(session, "D", "PUBLIC", "G"), _s(1))
        session.commit()
    assert scheduler.run_once(_s(1)) == [run.id]
    _settle(scheduler)
    with cp.read_sessionmaker() as session:
        row = session.get(DagRunRow, run.id)
        assert row is not None
        assert (row.state, row.first_error_task_name) == ("FAILED", "G$C")
        assert row.first_error_message is not None and "NO_SUCH_TABLE" in row.first_error_message
        tasks_run = {t.name: (t.state, t.return_value) for t in row.task_runs}
    assert tasks_run == {
        "A": ("SUCCEEDED", "it's 42"),
        "B": ("SUCCEEDED", "it's 42"),
        "C": ("FAILED", None),
        "F": ("SUCCEEDED", None),  # the finalizer runs whatever happened; D never started
    }
    assert _runs(cp, dag_id) == [(None, "FAILED", 0, "EXECUTE")]


def test_repeated_failures_suspend_the_dag(cp: ControlPlane, scheduler: Scheduler) -> None:
    body = DagCreate(
        name="F",
        schedule=DagSchedule(interval_s=2),
        suspend_task_after_num_failures=2,
        tasks=[_sql("A", "SELECT * FROM MISSING")],
    )
    dag_id = _deploy(cp, body)
    for at in (2, 4):
        scheduler.run_once(_s(at))
        _settle(scheduler)
    with cp.read_sessionmaker() as session:
        dag = session.get(DagRow, dag_id)
        assert dag is not None
        assert (dag.state, dag.next_slot_at) == ("suspended", None)
        assert dag.last_suspended_reason is not None
        assert dag.last_suspended_reason.startswith("Suspended after 2 failed runs in a row")
    assert scheduler.run_once(_s(6)) == []


def test_a_run_whose_process_died_fails(cp: ControlPlane) -> None:
    dag_id = _deploy(cp, DagCreate(name="G", tasks=[_sql("A")]))
    with cp.sessionmaker() as session:
        run = dags.execute_dag(session, dags.get_dag(session, "D", "PUBLIC", "G"), _s(0))
        session.commit()
    assert claim_runs(cp, "gone-process", _s(1)) == [run.id]
    with cp.sessionmaker() as session:
        session.add(
            DagTaskRunRow(run_id=run.id, name="A", state="EXECUTING", started_at=_s(1), job_ids=[], log="")
        )
        session.commit()
    assert fail_stale_runs(cp, _s(30)) == 0  # 29 s of silence: within the 30 s timeout
    assert fail_stale_runs(cp, _s(32)) == 1
    with cp.read_sessionmaker() as session:
        row = session.get(DagRunRow, run.id)
        assert row is not None
        assert (row.state, row.first_error_task_name) == ("FAILED", "G$A")
        assert row.first_error_message == (
            "The control plane process running this run (gone-process) stopped: no heartbeat for 30s."
        )
        assert [t.state for t in row.task_runs] == ["FAILED"]
    assert _runs(cp, dag_id)[0][1] == "FAILED"


def test_python_tasks_need_a_control_plane_serving_http(cp: ControlPlane, scheduler: Scheduler) -> None:
    body = DagCreate(name="P", tasks=[DagTaskCreate(name="A", kind="python", python="gAROLg==")])
    _deploy(cp, body)
    with cp.sessionmaker() as session:
        run = dags.execute_dag(session, dags.get_dag(session, "D", "PUBLIC", "P"), _s(0))
        session.commit()
    scheduler.run_once(_s(0))
    _settle(scheduler)
    with cp.read_sessionmaker() as session:
        row = session.get(DagRunRow, run.id)
        assert row is not None and row.state == "FAILED"
        assert row.first_error_message is not None
        assert row.first_error_message.startswith("Python tasks call back to the control plane over HTTP")


@pytest.fixture
def postgres_pair(tmp_path: Path) -> Iterator[tuple[ControlPlane, ControlPlane]]:
    """Two control planes (two replicas) on one Postgres metadata database."""
    database = PostgresDatabase()
    planes = []
    try:
        for i in range(2):
            settings = ServerSettings(home=tmp_path / f"replica{i}", database_url=database.url)
            planes.append(build_control_plane(settings))
        upgrade_to_head(planes[0].engine)
        yield planes[0], planes[1]
    finally:
        for plane in planes:
            plane.engine.dispose()
        database.drop()


def test_two_schedulers_on_postgres_fire_each_slot_once(
    postgres_pair: tuple[ControlPlane, ControlPlane],
) -> None:
    one, two = postgres_pair
    dag_ids = [
        _deploy(
            one,
            DagCreate(
                name=f"N{i}",
                schedule=DagSchedule(interval_s=1),
                allow_overlapping_execution=True,
                tasks=[_sql("A")],
            ),
        )
        for i in range(4)
    ]
    schedulers = [Scheduler(one, owner="replica-1"), Scheduler(two, owner="replica-2")]
    claimed: list[list[uuid.UUID]] = [[], []]
    try:
        for step in range(1, 13):
            now = _s(step / 2)
            barrier = threading.Barrier(4)

            def race(i: int, now: datetime = now, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                fire_due((one, two)[i % 2], now)  # past the advisory lock: the compare-and-set decides
                barrier.wait()
                claimed[i % 2].extend(schedulers[i % 2].run_once(now))

            threads = [threading.Thread(target=race, args=(i,)) for i in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        for made in schedulers:
            _settle(made)
    finally:
        for made in schedulers:
            made.runs.stop()
    for dag_id in dag_ids:
        assert _runs(one, dag_id) == [(_s(k), "SUCCEEDED", 0, "SCHEDULE") for k in range(1, 7)]
    assert not set(claimed[0]) & set(claimed[1])  # no run was claimed by both replicas
    assert len(claimed[0]) + len(claimed[1]) == 4 * 6


def test_a_copy_into_task_unloads_its_query(cp: ControlPlane, scheduler: Scheduler) -> None:
    tasks = [
        _sql(
            "U",
            "COPY INTO @OUT/daily/ FROM (SELECT 7 AS A, 'x' AS B) FILE_FORMAT = (TYPE = PARQUET) HEADER = TRUE",
        )
    ]
    _deploy(cp, DagCreate(name="UNLOAD", tasks=tasks))
    with cp.sessionmaker() as session:
        stages.create_stage(session, "D", "PUBLIC", "OUT", owner="alice")
        run = dags.execute_dag(session, dags.get_dag(session, "D", "PUBLIC", "UNLOAD"), _s(1))
        session.commit()
    assert scheduler.run_once(_s(1)) == [run.id]
    _settle(scheduler)
    with cp.read_sessionmaker() as session:
        row = session.get(DagRunRow, run.id)
        assert row is not None
        assert row.state == "SUCCEEDED", row.first_error_message
    written = [e.key.rsplit("/", 1)[-1] for e in cp.storage.list("stages/") if "/daily/" in e.key]
    assert written == ["data_0_0_0.snappy.parquet"]
