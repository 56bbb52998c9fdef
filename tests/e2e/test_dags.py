"""Scheduled batch inference through the SDK: DAGs with a BatchInferenceTask and a successor that
reads its output, embedded, over HTTP and on the cluster; a failing model; server restarts and two
server replicas on one Postgres."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from migrations import upgrade_to_head
from runbatch.core import CreateMode, Root
from runbatch.core.task import Cron
from runbatch.core.task.dagv1 import DAG, DAGOperation, DAGRun, DAGTask
from runbatch.errors import ConflictError, InvalidArgumentError, NotFoundError
from runbatch.ml.model.batch import BatchInferenceTask, JobSpec, OutputSpec
from runbatch.ml.model.model_signature import DataType, FeatureSpec, ModelSignature
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from server.db.engine import make_engine
from tests.e2e.models import Doubler, Raiser
from tests.services import PostgresDatabase, ServerProcess

POOL = "SYSTEM_COMPUTE_POOL_CPU"
ROWS = pd.DataFrame({"ID": list(range(10)), "X": [float(i) for i in range(10)]})


def check_output(session: Session) -> str:
    """The successor: reads the batch task's output where its return value says it is."""
    import json

    from runbatch.core.task.context import TaskContext

    value = json.loads(TaskContext(session).get_predecessor_return_value("BATCH_INFERENCE"))
    frame = session.read.parquet(value["output_stage_location"]).to_pandas()
    return json.dumps(
        {"seen": value["output_stage_location"], "rows": len(frame), "y": float(frame["Y"].sum())}
    )


def _operation(session: Session, database: str) -> DAGOperation:
    return DAGOperation(Root(session).databases[database].schemas["PUBLIC"])


def _wait(condition: Callable[[], bool], what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:.0f}s"
        time.sleep(0.5)


def _settle(op: DAGOperation, dag: DAG | str) -> list[DAGRun]:
    """Wait until no run is scheduled or executing; then every kept run, oldest first."""
    _wait(lambda: all(r.state not in ("SCHEDULED", "EXECUTING") for r in op.get_dag_runs(dag)), "runs to end")
    return sorted(op.get_dag_runs(dag, limit=0), key=lambda r: r.run_id)


def test_scheduled_batch_inference_writes_each_run_to_its_own_folder(session: Session, fresh_db: str) -> None:
    mv = Registry(session).log_model(Doubler(), model_name="DOUBLER", sample_input_data=ROWS.head(3))
    base = f"@{fresh_db}.PUBLIC.DATA/scored/"
    with DAG("SCORING", schedule=timedelta(seconds=2), use_func_return_value=True) as dag:
        batch = BatchInferenceTask(
            "BATCH_INFERENCE",
            model_version=mv,
            X=session.create_dataframe(ROWS),
            compute_pool=POOL,
            output_spec=OutputSpec(base_stage_location=base),
            job_spec=JobSpec(function_name="predict"),
        )
        batch >> DAGTask("CHECK", check_output)
    op = _operation(session, fresh_db)
    op.deploy(dag, mode=CreateMode.or_replace)
    try:
        assert op.iter_dags(like="scor%") == ["SCORING"]

        def succeeded() -> list[DAGRun]:
            return [r for r in op.get_complete_dag_runs(dag, error_only=False) if r.state == "SUCCEEDED"]

        _wait(lambda: len(succeeded()) >= 2, "two successful runs")
        Root(session).databases[fresh_db].schemas["PUBLIC"].tasks["SCORING"].suspend()
        runs = _settle(op, dag)

        assert {r.state for r in runs} <= {"SUCCEEDED", "SKIPPED"}, [
            (r.state, r.first_error_message) for r in runs
        ]
        done = [r for r in runs if r.state == "SUCCEEDED"]
        assert len(done) >= 2
        folders = []
        for run in done:
            batch_run, check_run = run.task_run("BATCH_INFERENCE"), run.task_run("CHECK")
            assert batch_run is not None and check_run is not None
            assert len(batch_run.job_ids) == 1
            job_name = batch_run.job_ids[0].split(".")[-1]
            assert re.fullmatch(r"BATCH_INFERENCE_[0-9A-F]{8}(_[0-9A-F]{4}){3}_[0-9A-F]{12}", job_name)
            location = f"{base}{job_name}/"
            assert batch_run.return_value is not None
            assert json.loads(batch_run.return_value) == {
                "output_stage_location": location,
                "job_id": batch_run.job_ids[0],
            }
            assert check_run.return_value is not None
            assert json.loads(check_run.return_value) == {"seen": location, "rows": 10, "y": 90.0}
            folders.append(job_name)
        assert len(set(folders)) == len(done)  # a new job, and a new folder, every run
        listed = {row["name"].split("/")[2] for row in session.sql(f"LIST {base}").collect()}
        assert listed == set(folders)
        for name in folders:
            assert session.sql(f"LIST {base}{name}/_SUCCESS").collect()
        slots = [r.scheduled_time for r in runs]
        assert len(set(slots)) == len(slots)
        for earlier, later in zip(runs, runs[1:], strict=False):
            assert earlier.scheduled_time is not None and later.scheduled_time is not None
            assert later.scheduled_time - earlier.scheduled_time == timedelta(seconds=2) * (
                1 + later.missed_slots
            )
    finally:
        op.drop(dag)  # a DAG left started would keep firing for the rest of the test session
    assert op.iter_dags(like="SCORING") == []


def test_a_failing_model_fails_the_run_and_its_successor_never_runs(session: Session, fresh_db: str) -> None:
    signature = ModelSignature(
        inputs=[FeatureSpec("ID", DataType.INT64), FeatureSpec("X", DataType.DOUBLE)],
        outputs=[FeatureSpec("Y", DataType.DOUBLE)],
    )
    mv = Registry(session).log_model(Raiser(), model_name="RAISER", signatures={"predict": signature})
    location = f"@{fresh_db}.PUBLIC.DATA/failing/"
    with DAG("FAILING") as dag:
        (
            DAGTask("PREP", "SELECT 1")
            >> BatchInferenceTask(
                "BATCH_INFERENCE",
                model_version=mv,
                X=session.create_dataframe(ROWS),
                compute_pool=POOL,
                output_spec=OutputSpec(stage_location=location),
            )
            >> DAGTask("SUCCESSOR", check_output)
        )
    op = _operation(session, fresh_db)
    op.deploy(dag)
    started = op.run(dag)
    # The scheduler may claim the run before run() has answered.
    assert (started.state in ("SCHEDULED", "EXECUTING"), started.trigger) == (True, "EXECUTE")
    _wait(lambda: bool(op.get_complete_dag_runs(dag)), "the failed run")
    (run,) = op.get_complete_dag_runs(dag)  # error_only=True
    assert run.state == "FAILED"
    assert run.first_error_task_name == "FAILING$BATCH_INFERENCE"
    assert re.search(r"Job .+ failed to complete.*Exited with status: FAILED", run.first_error_message or "")
    assert "the model refuses this input" in (run.first_error_message or "")
    assert [t.name for t in run.task_runs] == ["PREP", "BATCH_INFERENCE"]
    assert run.task_run("SUCCESSOR") is None
    assert session.sql(f"LIST {location}_SUCCESS").collect() == []


def test_deploy_conflicts_missing_dags_and_the_next_scheduled_run(session: Session, fresh_db: str) -> None:
    op = _operation(session, fresh_db)
    with DAG("YEARLY", schedule=Cron("0 0 1 1 *", "UTC"), comment="new year") as dag:
        DAGTask("HELLO", "SELECT 1")
    op.deploy(dag)
    try:
        with pytest.raises(ConflictError, match=f"^Task graph {fresh_db}.PUBLIC.YEARLY already exists"):
            op.deploy(dag)
        op.deploy(dag, mode="ifNotExists")
        (upcoming,) = op.get_current_dag_runs(dag)
        assert (upcoming.state, upcoming.dag_name, upcoming.graph_version) == ("SCHEDULED", "YEARLY", 1)
        assert upcoming.scheduled_time is not None
        assert (upcoming.scheduled_time.month, upcoming.scheduled_time.day, upcoming.scheduled_time.hour) == (
            1,
            1,
            0,
        )
        assert op.get_complete_dag_runs(dag) == []
    finally:
        op.drop(dag)
    op.drop(dag)  # dropping what is gone is fine, as in Snowflake
    with pytest.raises(
        NotFoundError, match=f"^Task graph {fresh_db}.PUBLIC.YEARLY does not exist or not authorized"
    ):
        op.get_complete_dag_runs("yearly")


def test_batch_inference_task_constructor_errors(embedded_session: Session, embedded_db: str) -> None:
    mv = Registry(embedded_session).log_model(Doubler(), model_name="DOUBLER", sample_input_data=ROWS.head(3))
    frame = embedded_session.create_dataframe(ROWS)
    spec = OutputSpec(stage_location="@DATA/out/")
    with DAG("D"):
        with pytest.raises(
            TypeError, match=r"^BatchInferenceTask builds its own task definition; do not pass"
        ):
            BatchInferenceTask(
                "B", model_version=mv, X=frame, compute_pool=POOL, output_spec=spec, definition="SELECT 1"
            )
        with pytest.raises(
            InvalidArgumentError, match="^There is no method with name nope available in the model"
        ):
            BatchInferenceTask(
                "B",
                model_version=mv,
                X=frame,
                compute_pool=POOL,
                output_spec=spec,
                job_spec=JobSpec(function_name="nope"),
            )
        task = BatchInferenceTask(
            "B", model_version=mv, X=frame, compute_pool=POOL, output_spec=spec, comment="c"
        )
    assert task.comment == "c"
    assert task._summary() == {
        "kind": "batch_inference",
        "model": f"{embedded_db}.PUBLIC.DOUBLER",
        "version": mv.version_name,
        "function": "predict",
        "compute_pool": POOL,
        "stage_location": "@DATA/out/",
    }
    with pytest.raises(ValueError, match="^Parameter 'dag' must be set when creating a DAGTask.$"):
        BatchInferenceTask("B", model_version=mv, X=frame, compute_pool=POOL, output_spec=spec)


def sleep_long(session: Session) -> None:
    import time

    print("going to sleep", flush=True)
    time.sleep(120)


def fail_loudly(session: Session) -> None:
    raise KeyError("no such column")


def test_python_task_timeout_and_error(embedded_session: Session, embedded_db: str) -> None:
    op = _operation(embedded_session, embedded_db)
    with DAG("SLOW", user_task_timeout_ms=1500) as slow:
        DAGTask("NAP", sleep_long)
    with DAG("BROKEN") as broken:
        DAGTask("OOPS", fail_loudly) >> DAGTask("AFTER", "SELECT 1")
    for dag in (slow, broken):
        op.deploy(dag)
        op.run(dag)
    _wait(lambda: bool(op.get_complete_dag_runs(slow) and op.get_complete_dag_runs(broken)), "both runs", 120)
    (timed_out,) = op.get_complete_dag_runs(slow)
    assert (timed_out.state, timed_out.first_error_task_name) == ("FAILED", "SLOW$NAP")
    assert timed_out.first_error_message == (
        "The task ran longer than its USER_TASK_TIMEOUT_MS of 1500 ms and was stopped."
    )
    nap = timed_out.task_run("NAP")
    assert nap is not None and nap.log.startswith("going to sleep")
    (failed,) = op.get_complete_dag_runs(broken)
    assert (failed.state, failed.first_error_message) == ("FAILED", "KeyError: 'no such column'")
    oops = failed.task_run("OOPS")
    assert oops is not None and "Traceback" in oops.log and oops.log.endswith("KeyError: 'no such column'")
    assert failed.task_run("AFTER") is None


def _schedule_of_sql(
    session: Session, database: str, name: str, seconds: float, **options: object
) -> DAGOperation:
    session.sql(f"CREATE DATABASE IF NOT EXISTS {database}").collect()
    with DAG(name, schedule=timedelta(seconds=seconds), **options) as dag:  # type: ignore[arg-type]
        DAGTask("TICK", "SELECT 1 AS ONE")
    op = _operation(session, database)
    op.deploy(dag, mode=CreateMode.or_replace)
    return op


def _assert_every_slot_once(runs: list[DAGRun], interval: timedelta) -> None:
    assert [r.state for r in runs] == ["SUCCEEDED"] * len(runs), [
        (r.state, r.first_error_message) for r in runs
    ]
    assert len({r.run_id for r in runs}) == len(runs)
    for earlier, later in zip(runs, runs[1:], strict=False):
        assert earlier.scheduled_time is not None and later.scheduled_time is not None
        assert later.scheduled_time - earlier.scheduled_time == interval * (1 + later.missed_slots)


@pytest.fixture(params=["sqlite", "postgres"])
def restartable(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    """A `runbatch server` of the test's own, on SQLite or Postgres, that the test restarts."""
    env: dict[str, str] = {}
    database = None
    if request.param == "postgres":
        database = PostgresDatabase()
        engine = make_engine(database.url)
        upgrade_to_head(engine)
        engine.dispose()
        env["RUNBATCH_DATABASE_URL"] = database.url
    (tmp_path / "server").mkdir()
    server = ServerProcess(tmp_path / "server", env)
    try:
        yield server
    finally:
        server.stop()
        if database is not None:
            database.drop()


def test_a_server_restart_between_slots_loses_no_slot_and_doubles_none(restartable: ServerProcess) -> None:
    session = restartable.session()
    op = _schedule_of_sql(session, "RESTART", "TICKER", 3, allow_overlapping_execution=True)

    def succeeded() -> int:
        return sum(r.state == "SUCCEEDED" for r in op.get_complete_dag_runs("TICKER", error_only=False))

    _wait(lambda: succeeded() >= 1, "the first run", timeout=60)
    down_at = datetime.now(UTC)
    restartable.stop()
    time.sleep(3.5)  # down across at least one slot
    restarting_at = datetime.now(UTC)
    restartable.start()
    up_at = datetime.now(UTC)
    op = _operation(restartable.session(), "RESTART")
    _wait(lambda: succeeded() >= 3, "two runs after the restart")
    op.schema.tasks["TICKER"].suspend()
    runs = _settle(op, "TICKER")
    _assert_every_slot_once(runs, timedelta(seconds=3))
    # The slots that came while the server was down ran when it was back: the latest once, the others
    # counted in its missed_slots.
    caught_up = [
        r for r in runs if r.scheduled_time and down_at + timedelta(seconds=1) < r.scheduled_time < up_at
    ]
    assert caught_up
    for run in caught_up:
        assert run.query_start_time is not None and run.query_start_time > restarting_at


def test_two_server_replicas_fire_each_slot_once(tmp_path: Path) -> None:
    database = PostgresDatabase()
    engine = make_engine(database.url)
    upgrade_to_head(engine)
    engine.dispose()
    env = {"RUNBATCH_DATABASE_URL": database.url}
    servers: list[ServerProcess] = []
    try:
        for i in range(2):
            (tmp_path / f"replica{i}").mkdir()
            servers.append(ServerProcess(tmp_path / f"replica{i}", env))
        session = servers[0].session()
        op = _schedule_of_sql(session, "REPLICAS", "FAST", 1, allow_overlapping_execution=True)
        _wait(lambda: len(op.get_complete_dag_runs("FAST", error_only=False)) >= 6, "six runs", timeout=120)
        op.schema.tasks["FAST"].suspend()
        runs = _settle(op, "FAST")
        _assert_every_slot_once(runs, timedelta(seconds=1))
        assert sum(r.missed_slots for r in runs) == 0
    finally:
        for server in servers:
            server.stop()
        database.drop()
