"""The operator, trigger and sensor in a whole Airflow DAG run: ``dag.test()`` on a migrated metadata
database runs each task through the Task SDK's supervisor, the deferred trigger inline, and XCom
through the database."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from runbatch.client import ControlPlaneClient
from tests.airflow.conftest import HERE, Server


def test_dag_test_runs_score_wait_and_report(server: Server, tmp_path: Path) -> None:
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(HERE / "scoring_dag.py", dags / "scoring_dag.py")
    report = tmp_path / "report.json"
    env = dict(
        os.environ,
        AIRFLOW_HOME=str(tmp_path / "airflow"),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        RUNBATCH_TEST_DATABASE=server.database,
        RUNBATCH_TEST_REPORT=str(report),
    )
    migrate = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    run = subprocess.run(
        [sys.executable, str(dags / "scoring_dag.py")], env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"state": "success"}, run.stderr[-4000:]

    seen = json.loads(report.read_text())
    job_name = seen["result"]["job_name"]
    database, schema, name = job_name.split(".")
    assert (database, schema) == (server.database, "PUBLIC")
    assert name.startswith("AIRFLOW_")
    location = f"@{server.database}.PUBLIC.DATA/daily/{name}/"
    assert seen == {"result": {"job_name": job_name, "output_stage_location": location}, "sensor": location}
    client = ControlPlaneClient(server.url, server.token)
    try:
        job = client.get_job(database, schema, name)
        assert (job.status, job.rows_done) == ("DONE", 6)
        files = {f.path for f in client.list_stage_files(database, schema, "DATA", path=f"daily/{name}/")}
        assert f"daily/{name}/_SUCCESS" in files
    finally:
        client.close()
