"""Deploying DAGs: graph checks, create modes, schedules and their first slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runbatch.errors import ConflictError, InvalidArgumentError
from runbatch.wire.dags import DagCreate, DagPublic, DagSchedule, DagTaskCreate
from server.control_plane import ControlPlane
from server.dags import service as dags
from server.db.tables import DagRunRow
from server.resources.service import create_database

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)


def _sql(name: str, *preds: str, finalizer: bool = False) -> DagTaskCreate:
    return DagTaskCreate(
        name=name, kind="sql", sql="SELECT 1", predecessors=list(preds), is_finalizer=finalizer
    )


def _deploy(cp: ControlPlane, body: DagCreate, now: datetime = T0) -> DagPublic:
    with cp.sessionmaker() as session:
        create_database(session, "D", owner="alice", if_not_exists=True)
        dag, _ = dags.deploy_dag(session, "D", "PUBLIC", body, owner="alice", now=now)
        session.commit()
        return dags.dag_public(dag)


def test_interval_dag_starts_with_its_first_slot(cp: ControlPlane) -> None:
    dag = _deploy(cp, DagCreate(name="N", schedule=DagSchedule(interval_s=90), tasks=[_sql("A")]))
    assert (dag.state, dag.next_scheduled_time) == ("started", T0 + timedelta(seconds=90))
    assert dag.graph_version == 1 and dag.owner == "alice"


def test_cron_dag_next_slot_and_unscheduled_dag(cp: ControlPlane) -> None:
    cron = _deploy(cp, DagCreate(name="C", schedule=DagSchedule(cron="15 * * * *", timezone="UTC")))
    assert cron.next_scheduled_time == datetime(2026, 6, 1, 12, 15, tzinfo=UTC)
    manual = _deploy(cp, DagCreate(name="M", tasks=[_sql("A")]))
    assert (manual.state, manual.next_scheduled_time) == ("suspended", None)
    with cp.sessionmaker() as session:
        with pytest.raises(InvalidArgumentError, match="has no schedule, so it cannot be resumed"):
            dags.resume_dag(dags.get_dag(session, "D", "PUBLIC", "M"), T0)


def test_create_modes(cp: ControlPlane) -> None:
    _deploy(cp, DagCreate(name="N", tasks=[_sql("A")]))
    with pytest.raises(
        ConflictError, match=r"^Task graph D.PUBLIC.N already exists. Deploy with mode=CreateMode"
    ):
        _deploy(cp, DagCreate(name="N", tasks=[_sql("B")]))
    kept = _deploy(cp, DagCreate(name="N", mode="ifNotExists", tasks=[_sql("B")]))
    assert [t.name for t in kept.tasks] == ["A"] and kept.graph_version == 1
    with cp.sessionmaker() as session:
        dag = dags.get_dag(session, "D", "PUBLIC", "N")
        dags.execute_dag(session, dag, T0)
        session.commit()
    replaced = _deploy(cp, DagCreate(name="N", mode="orReplace", tasks=[_sql("A"), _sql("B", "A")]))
    assert [(t.name, t.predecessors) for t in replaced.tasks] == [("A", []), ("B", ["A"])]
    assert replaced.graph_version == 2
    with cp.sessionmaker() as session:
        runs = dags.list_runs(session, dags.get_dag(session, "D", "PUBLIC", "N"))
        assert [(r.trigger, r.graph_version) for r in runs] == [("EXECUTE", 1)]  # history kept


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ([_sql("A"), _sql("A")], "Task graph G has more than one task named A."),
        ([_sql("A", "X")], "Task A of task graph G follows X, which is not in the graph."),
        ([_sql("A", "B"), _sql("B", "A")], "There is a cycle in the task graph (tasks A, B)."),
        ([_sql("A"), _sql("F", "A", finalizer=True)], "Finalizer task F cannot have any predecessors"),
        ([_sql("F", finalizer=True), _sql("A", "F")], "Finalizer task F cannot be predecessor of any task"),
    ],
)
def test_bad_graphs_are_refused(cp: ControlPlane, tasks: list[DagTaskCreate], message: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        _deploy(cp, DagCreate(name="G", tasks=tasks))
    assert err.value.message == message


def test_bad_schedule_and_overlapping_execute(cp: ControlPlane) -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown time zone 'Nowhere'"):
        _deploy(cp, DagCreate(name="G", schedule=DagSchedule(cron="0 * * * *", timezone="Nowhere")))
    with pytest.raises(InvalidArgumentError, match="shorter than the minimum of 1 second"):
        _deploy(cp, DagCreate(name="G", schedule=DagSchedule(interval_s=0.5)))
    _deploy(cp, DagCreate(name="G", tasks=[_sql("A")]))
    with cp.sessionmaker() as session:
        dag = dags.get_dag(session, "D", "PUBLIC", "G")
        dags.execute_dag(session, dag, T0)
        with pytest.raises(ConflictError, match="has a run scheduled .* does not allow overlapping runs"):
            dags.execute_dag(session, dag, T0 + timedelta(seconds=1))
        dag.allow_overlapping_execution = True
        dags.execute_dag(session, dag, T0 + timedelta(seconds=1))
        session.commit()
        assert len(dags.list_runs(session, dag)) == 2


def test_drop_removes_history(cp: ControlPlane) -> None:
    _deploy(cp, DagCreate(name="G", tasks=[_sql("A")]))
    with cp.sessionmaker() as session:
        dag = dags.get_dag(session, "D", "PUBLIC", "G")
        run = dags.execute_dag(session, dag, T0)
        dags.drop_dag(session, dag)
        session.commit()
    with cp.sessionmaker() as session:
        assert session.get(DagRunRow, run.id) is None
        assert dags.list_dags(session, "D", "PUBLIC") == []
