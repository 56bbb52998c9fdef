"""RunBatchOperator, its trigger and the stage sensor against a real `runbatch server`, with real
Airflow task-instance contexts (see conftest.task_context)."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk import DAG
from airflow.sdk._shared.module_loading import import_string
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from runbatch.airflow import (
    RunbatchHook,
    RunbatchJobTrigger,
    RunBatchOperator,
    RunbatchStageFileTrigger,
    RunbatchStageSensor,
)
from runbatch.airflow.job_request import JobAddress, airflow_job_name
from runbatch.client import ControlPlaneClient
from runbatch.errors import InvalidArgumentError
from tests.airflow.conftest import Server
from tests.airflow.task_context import task_context

POOL = "SYSTEM_COMPUTE_POOL_CPU"


@pytest.fixture
def client(server: Server) -> Iterator[ControlPlaneClient]:
    client = ControlPlaneClient(server.url, server.token)
    yield client
    client.close()


def _dag(dag_id: str) -> DAG:
    return DAG(dag_id, schedule=None)


def _first_event(trigger: Any, timeout: float = 120) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(asyncio.wait_for(first(), timeout))


def _roundtrip(trigger: Any) -> Any:
    """What the triggerer runs: the trigger rebuilt from its serialized form."""
    classpath, kwargs = trigger.serialize()
    return import_string(classpath)(**kwargs)


def _read_output(client: ControlPlaneClient, location: str) -> pd.DataFrame:
    database, schema, rest = location[1:].split(".", 2)
    stage, path = rest.split("/", 1)
    files = client.list_stage_files(database, schema, stage, path=path)
    frames = [
        pq.read_table(
            io.BytesIO(b"".join(client.download_stage_file(database, schema, stage, f.path)))
        ).to_pandas()
        for f in files
        if f.path.endswith(".parquet")
    ]
    return pd.concat(frames).sort_values("ID").reset_index(drop=True)


def _wait_status(client: ControlPlaneClient, job: JobAddress, status: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (current := client.get_job(job.database, job.schema, job.name).status) != status:
        assert time.monotonic() < deadline, f"job {job} is {current}, not {status}"
        time.sleep(0.3)


def test_operator_defers_and_its_trigger_completes_the_job(
    server: Server, client: ControlPlaneClient
) -> None:
    db = server.database
    with _dag("nightly_scoring"):
        op = RunBatchOperator(
            task_id="score",
            model_name="LINEAR",
            version_name="V1",
            X="INPUT",
            compute_pool=POOL,
            output_spec={"stage_location": "@DATA/scored/{{ ds_nodash }}/"},
            database=db,
            schema="PUBLIC",
            poll_interval=0.5,
        )
    context = task_context(op)
    day = context["ds_nodash"]
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)

    name = airflow_job_name("nightly_scoring", "score", context["run_id"], -1)
    trigger = deferred.value.trigger
    assert isinstance(trigger, RunbatchJobTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert trigger.job == JobAddress(db, "PUBLIC", name)
    assert trigger.serialize() == (
        "runbatch.airflow.triggers.RunbatchJobTrigger",
        {
            "database": db,
            "schema": "PUBLIC",
            "name": name,
            "runbatch_conn_id": "runbatch_default",
            "poll_interval": 0.5,
            "max_transient_errors": 30,
        },
    )

    event = _first_event(_roundtrip(trigger))
    assert event == {
        "status": "DONE",
        "job_name": f"{db}.PUBLIC.{name}",
        "output_stage_location": f"@{db}.PUBLIC.DATA/scored/{day}/",
        "message": event["message"],
    }
    result = op.execute_complete(context, event)
    assert result == {
        "job_name": f"{db}.PUBLIC.{name}",
        "output_stage_location": f"@{db}.PUBLIC.DATA/scored/{day}/",
    }

    out = _read_output(client, result["output_stage_location"])
    assert out["ID"].tolist() == [0, 1, 2, 3, 4, 5]
    prediction = [c for c in out.columns if c not in ("ID", "X")]
    assert len(prediction) == 1
    assert out[prediction[0]].round(9).tolist() == [1.0, 4.0, 7.0, 10.0, 13.0, 16.0]

    # A retry of the task (the worker died while it waited) takes the DONE job's result: no second job.
    retry = task_context(op, try_number=2, run_id=context["run_id"])
    assert op.execute(retry) == result
    assert client.list_jobs(name=name).count == 1


def test_failed_job_fails_the_task_with_the_jobs_message_and_a_retry_resubmits(
    server: Server, client: ControlPlaneClient
) -> None:
    with _dag("refused"):
        op = RunBatchOperator(
            task_id="score",
            model_name=f"{server.database}.PUBLIC.REFUSER",
            version_name="V1",
            X=f"SELECT ID, X FROM {server.database}.PUBLIC.INPUT",
            compute_pool=POOL,
            output_spec={"stage_location": f"@{server.database}.PUBLIC.DATA/refused/"},
            job_spec={"fail_fast": True},
            poll_interval=0.5,
        )
    context = task_context(op)
    with pytest.raises(TaskDeferred) as deferred:
        op.execute(context)
    event = _first_event(_roundtrip(deferred.value.trigger))
    assert event["status"] == "FAILED"
    job = deferred.value.trigger.job
    with pytest.raises(AirflowException) as failed:
        op.execute_complete(context, event)
    message = str(failed.value)
    assert message.startswith(f"Job {job} failed to complete. Exited with status: FAILED. ")
    assert "the model refuses this input" in message
    first = client.get_job(job.database, job.schema, job.name).uuid

    # Airflow retries the task: the failed job's name is freed and a new job submitted under it.
    with pytest.raises(TaskDeferred) as again:
        op.execute(task_context(op, try_number=2, run_id=context["run_id"]))
    assert again.value.trigger.job == job
    assert client.get_job(job.database, job.schema, job.name).uuid != first
    assert _first_event(again.value.trigger)["status"] == "FAILED"


def test_non_deferrable_operator_polls_and_the_sensor_sees_success(
    server: Server, client: ControlPlaneClient
) -> None:
    db = server.database
    table = pa.table({"ID": [10, 11], "X": [0.5, -1.0]})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    client.upload_stage_file(db, "PUBLIC", "DATA", "incoming/part-0.parquet", buffer.getvalue())
    with _dag("polling"):
        op = RunBatchOperator(
            task_id="score",
            model_name=f"{db}.PUBLIC.LINEAR",
            version_name="V1",
            X=f"@{db}.PUBLIC.DATA/incoming/",
            compute_pool=POOL,
            output_spec={"base_stage_location": f"@{db}.PUBLIC.DATA/runs/"},
            job_spec={"job_name_prefix": "POLLED"},
            deferrable=False,
            poll_interval=0.5,
        )
        sensor = RunbatchStageSensor(
            task_id="wait",
            stage_location="{{ params.location }}",
            params={"location": f"@{db}.PUBLIC.DATA/runs/"},
            poke_interval=0.5,
        )
    context = task_context(op)
    result = op.execute(context)
    name = airflow_job_name("polling", "score", context["run_id"], -1, "POLLED")
    assert result == {
        "job_name": f"{db}.PUBLIC.{name}",
        "output_stage_location": f"@{db}.PUBLIC.DATA/runs/{name}/",
    }
    out = _read_output(client, result["output_stage_location"])
    assert out["ID"].tolist() == [10, 11]
    assert out[[c for c in out.columns if c not in ("ID", "X")][0]].round(9).tolist() == [2.5, -2.0]

    # The base location has no _SUCCESS of its own: the sensor defers, with a trigger on that folder.
    sensor_context = task_context(sensor)
    assert sensor.poke(sensor_context) is False
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(sensor_context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, RunbatchStageFileTrigger)
    assert trigger.serialize() == (
        "runbatch.airflow.triggers.RunbatchStageFileTrigger",
        {
            "database": db,
            "schema": "PUBLIC",
            "stage": "DATA",
            "path": "runs",
            "file_name": "_SUCCESS",
            "runbatch_conn_id": "runbatch_default",
            "poll_interval": 0.5,
            "max_transient_errors": 30,
        },
    )
    client.upload_stage_file(db, "PUBLIC", "DATA", "runs/_SUCCESS", b"")
    event = _first_event(_roundtrip(trigger))
    assert event == {"status": "success", "location": f"@{db}.PUBLIC.DATA/runs/", "file": "runs/_SUCCESS"}
    assert sensor.execute_complete(sensor_context, event) == f"@{db}.PUBLIC.DATA/runs/"

    # The job's own output folder has the job's _SUCCESS: found on the first poke, no deferral.
    with _dag("sensing"):
        direct = RunbatchStageSensor(task_id="wait", stage_location=result["output_stage_location"])
    assert direct.execute(task_context(direct)) == result["output_stage_location"]


def test_on_kill_and_the_triggers_on_kill_cancel_the_job(server: Server, client: ControlPlaneClient) -> None:
    with _dag("killed"):
        op = RunBatchOperator(
            task_id="score",
            model_name=f"{server.database}.PUBLIC.SLEEPER",
            version_name="V1",
            X=f"{server.database}.PUBLIC.INPUT",
            compute_pool=POOL,
            output_spec={"stage_location": f"@{server.database}.PUBLIC.DATA/killed/"},
        )
        deferred_op = RunBatchOperator(
            task_id="score_deferred",
            model_name=f"{server.database}.PUBLIC.SLEEPER",
            version_name="V1",
            X=f"{server.database}.PUBLIC.INPUT",
            compute_pool=POOL,
            output_spec={"stage_location": f"@{server.database}.PUBLIC.DATA/killed_deferred/"},
        )
    # The worker is killed while execute() polls: on_kill cancels the job it submitted.
    op.submit(task_context(op))
    assert op.job is not None
    op.on_kill()
    _wait_status(client, op.job, "CANCELLED")

    # The task is killed while deferred: Airflow calls the trigger's on_kill in the triggerer.
    with pytest.raises(TaskDeferred) as deferred:
        deferred_op.execute(task_context(deferred_op))
    trigger = _roundtrip(deferred.value.trigger)
    asyncio.run(trigger.on_kill())
    _wait_status(client, trigger.job, "CANCELLED")
    event = _first_event(trigger)
    assert event["status"] == "CANCELLED"
    with pytest.raises(AirflowException, match=r"Exited with status: CANCELLED\."):
        deferred_op.execute_complete(task_context(deferred_op), event)


def test_hook_reads_the_connection_or_the_environment(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert RunbatchHook().credentials() == (server.url, server.token)
    monkeypatch.delenv("AIRFLOW_CONN_RUNBATCH_DEFAULT")
    with pytest.raises(InvalidArgumentError, match="There is no Airflow connection 'runbatch_default'"):
        RunbatchHook().credentials()
    monkeypatch.setenv("RUNBATCH_API_URL", server.url + "/")
    monkeypatch.setenv("RUNBATCH_TOKEN", server.token)
    assert RunbatchHook().credentials() == (server.url, server.token)
    assert asyncio.run(RunbatchHook().acredentials()) == (server.url, server.token)
    # The environment stands in for runbatch_default only, never for a connection named otherwise.
    with pytest.raises(InvalidArgumentError, match="There is no Airflow connection 'other'"):
        RunbatchHook("other").credentials()
    # host as a full URL (a JSON connection), or host, port and schema as the scheme (HttpHook's way).
    monkeypatch.setenv(
        "AIRFLOW_CONN_FULL_URL",
        '{"conn_type": "generic", "host": "https://rb.example.com/", "password": "t1"}',
    )
    assert RunbatchHook("full_url").credentials() == ("https://rb.example.com", "t1")
    monkeypatch.setenv("AIRFLOW_CONN_PARTS", "generic://:t2@rb.example.com:8443/https")
    assert RunbatchHook("parts").credentials() == ("https://rb.example.com:8443", "t2")
    monkeypatch.setenv("AIRFLOW_CONN_NO_TOKEN", "runbatch://runbatch.example.com:8000")
    with pytest.raises(InvalidArgumentError, match=r"has no password \(the token\)"):
        RunbatchHook("no_token").credentials()


def test_bad_arguments_are_refused_before_anything_is_submitted(
    server: Server, client: ControlPlaneClient
) -> None:
    with _dag("bad"):
        relative = RunBatchOperator(
            task_id="relative",
            model_name="LINEAR",
            X="INPUT",
            compute_pool=POOL,
            output_spec={"stage_location": "@DATA/x/"},
        )
        pattern_on_table = RunBatchOperator(
            task_id="pattern",
            model_name=f"{server.database}.PUBLIC.LINEAR",
            X="INPUT",
            input_pattern=r".*\.parquet",
            compute_pool=POOL,
            output_spec={"stage_location": "@DATA/x/"},
        )
    before = client.list_jobs(limit=0).count
    with pytest.raises(InvalidArgumentError, match="Cannot resolve the model 'LINEAR': no database is given"):
        relative.execute(task_context(relative))
    with pytest.raises(InvalidArgumentError, match="input_pattern applies to a stage location X"):
        pattern_on_table.execute(task_context(pattern_on_table))
    assert client.list_jobs(limit=0).count == before
