"""Building DAGs on the client: Snowflake's dagv1 rules and errors, and what deploy sends."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import cloudpickle
import pytest

from runbatch.core import CreateMode
from runbatch.core.exceptions import InvalidOperationError
from runbatch.core.task import Cron, StoredProcedureCall
from runbatch.core.task import context as task_context
from runbatch.core.task.context import TaskContext
from runbatch.core.task.dagv1 import DAG, DAGTask, DAGTaskBranch, _dag_body
from runbatch.errors import InvalidArgumentError, UnsupportedError
from runbatch.wire.dags import TaskRunContext


def _double(session: object) -> str:
    return "2"


def test_a_task_needs_a_dag() -> None:
    with pytest.raises(ValueError, match="^Parameter 'dag' must be set when creating a DAGTask.$"):
        DAGTask("orphan", "SELECT 1")


def test_chaining_sets_predecessors_and_deploy_sends_them_in_order() -> None:
    with DAG("My_Dag", schedule=timedelta(minutes=10), use_func_return_value=True) as dag:
        prep = DAGTask("prep", "SELECT 1")
        score = DAGTask("score", _double)
        report = DAGTask("report", StoredProcedureCall(_double, packages=["pandas"]))
        audit = DAGTask("audit", "SELECT 2")
        result = prep >> score >> [report, audit]
    assert result == [report, audit]
    assert score.predecessors == {prep}
    assert report.predecessors == audit.predecessors == {score}
    assert score.full_name == "My_Dag$score"
    assert dag.tasks == [prep, score, report, audit] and "score" in dag and dag.get_task("audit") is audit

    body = _dag_body(dag, CreateMode.or_replace)
    assert body.name == "MY_DAG"
    assert body.mode == "orReplace"
    assert body.schedule is not None and body.schedule.interval_s == 600
    assert body.use_func_return_value is True
    assert [(t.name, t.kind, t.predecessors) for t in body.tasks] == [
        ("PREP", "sql", []),
        ("SCORE", "python", ["PREP"]),
        ("REPORT", "python", ["SCORE"]),
        ("AUDIT", "sql", ["SCORE"]),
    ]
    assert body.tasks[0].sql == "SELECT 1"
    assert body.tasks[1].python is not None
    assert cloudpickle.loads(base64.b64decode(body.tasks[1].python))(None) == "2"


def test_left_shift_and_functions_become_tasks() -> None:
    with DAG("d", schedule=Cron("0 * * * *", "UTC")) as dag:
        last = DAGTask("last", "SELECT 1")
        made = last << _double
    assert isinstance(made, DAGTask) and made.name == "_double"
    assert last.predecessors == {made}
    body = _dag_body(dag, CreateMode.error_if_exists)
    assert body.schedule is not None
    assert (body.schedule.cron, body.schedule.timezone, body.schedule.interval_s) == (
        "0 * * * *",
        "UTC",
        None,
    )


def test_a_cycle_is_refused_at_deploy() -> None:
    with DAG("d") as dag:
        a = DAGTask("a", "SELECT 1")
        b = DAGTask("b", "SELECT 1")
        a >> b
        b >> a
    with pytest.raises(ValueError, match="^There is a cycle in the task graph.$"):
        _dag_body(dag, CreateMode.error_if_exists)


def test_finalizer_rules() -> None:
    with DAG("d") as dag:
        work = DAGTask("work", "SELECT 1")
        cleanup = DAGTask("cleanup", "SELECT 2", is_finalizer=True)
        with pytest.raises(
            InvalidOperationError, match="^Finalizer task for this Dag again already exists named"
        ):
            DAGTask("again", "SELECT 3", is_finalizer=True)
        with pytest.raises(
            InvalidOperationError, match="^Finalizer task cleanup cannot have any successors$"
        ):
            cleanup >> work
        with pytest.raises(InvalidOperationError, match="^Finalizer task cleanup cannot be predecessor"):
            work << cleanup
    assert dag.get_finalizer_task() is cleanup


def test_tasks_of_another_dag_and_serverless_warehouse() -> None:
    with DAG("one") as one:
        a = DAGTask("a", "SELECT 1")
    with DAG("two", warehouse="WH"):
        b = DAGTask("b", "SELECT 1")
        assert b.warehouse == "WH"
        with pytest.raises(ValueError, match="^Warehouse was provided for a serverless task.$"):
            DAGTask("c", "SELECT 1", warehouse="X", is_serverless=True)
    with pytest.raises(InvalidOperationError, match="^Task a belongs to a different task graph$"):
        b >> a
    with pytest.raises(ValueError, match="^Cannot move a task to a different task graph$"):
        DAG("three").add_task(a)
    assert one.tasks == [a]


def test_unsupported_options_are_refused_not_ignored() -> None:
    with DAG("d") as dag:
        DAGTask("a", "SELECT 1", condition="SYSTEM$GET_PREDECESSOR_RETURN_VALUE('X') = 'Y'")
    with pytest.raises(UnsupportedError, match="task conditions"):
        _dag_body(dag, CreateMode.error_if_exists)
    with pytest.raises(UnsupportedError, match="error_integration"):
        _dag_body(DAG("e", error_integration="NOTIFY"), CreateMode.error_if_exists)
    with pytest.raises(UnsupportedError, match="task_auto_retry_attempts"):
        _dag_body(DAG("e", task_auto_retry_attempts=2), CreateMode.error_if_exists)
    with (
        DAG("f"),
        pytest.raises(UnsupportedError, match="^DAGTaskBranch pick: branching tasks are not supported"),
    ):
        DAGTaskBranch("pick", _double)


def test_create_mode_by_member_name_or_value() -> None:
    assert CreateMode.of(CreateMode.or_replace) is CreateMode.or_replace
    assert CreateMode.of("orReplace") is CreateMode.or_replace
    assert CreateMode.of("if_not_exists") is CreateMode.if_not_exists
    with pytest.raises(InvalidArgumentError, match="Unknown create mode 'replace'"):
        CreateMode.of("replace")


def test_task_context_outside_a_task() -> None:
    with pytest.raises(
        InvalidArgumentError, match="^Function SYSTEM\\$SET_RETURN_VALUE must be called from within"
    ):
        TaskContext(None).set_return_value("x")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="SYSTEM\\$GET_PREDECESSOR_RETURN_VALUE must be called"):
        TaskContext(None).get_predecessor_return_value()  # type: ignore[arg-type]


@pytest.fixture
def in_task() -> Iterator[task_context._TaskRun]:
    context = TaskRunContext(
        database="ML",
        schema_="PUBLIC",
        dag="NIGHTLY",
        dag_id=uuid.uuid4(),
        task="REPORT",
        run_id=uuid.uuid4(),
        scheduled_time=datetime(2026, 1, 1, tzinfo=UTC),
        graph_version=3,
        predecessors={"SCORE": '{"output_stage_location": "@S/out/"}', "PREP": None},
        config={"env": "prod"},
    )
    run = task_context._activate(context)
    yield run
    task_context._current = None


def test_task_context_in_a_task(in_task: task_context._TaskRun) -> None:
    ctx = TaskContext(None)  # type: ignore[arg-type]
    assert ctx.get_predecessor_return_value("score") == '{"output_stage_location": "@S/out/"}'
    assert ctx.get_predecessor_return_value("NIGHTLY$SCORE") == '{"output_stage_location": "@S/out/"}'
    assert ctx.get_predecessor_return_value("prep") == "None"  # as str(NULL) in Snowflake
    with pytest.raises(InvalidArgumentError, match=r"^Task REPORT has 2 predecessors \(PREP, SCORE\): name"):
        ctx.get_predecessor_return_value()
    with pytest.raises(
        InvalidArgumentError, match="^other is not a predecessor of task REPORT; its predecessors"
    ):
        ctx.get_predecessor_return_value("other")
    ctx.set_return_value(42)
    assert in_task.return_value == "42"
    assert ctx.get_current_task_name() == "ML.PUBLIC.NIGHTLY$REPORT"
    assert ctx.get_current_task_short_name() == "REPORT"
    assert ctx.get_current_root_task_name() == "ML.PUBLIC.NIGHTLY"
    assert ctx.get_task_graph_config_property("env") == "prod"
    assert ctx.get_runtime_info("CURRENT_TASK_GRAPH_ORIGINAL_SCHEDULED_TIMESTAMP") == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert ctx.get_last_successful_task_graph_run_group_id() is None


@pytest.mark.parametrize(
    "name", ["runbatch.core", "runbatch.core.task", "runbatch.core.task.dagv1", "runbatch.core.task.context"]
)
def test_all_is_honest(name: str) -> None:
    import importlib

    module = importlib.import_module(name)
    for member in module.__all__:
        assert getattr(module, member) is not None, f"{name}.{member}"
