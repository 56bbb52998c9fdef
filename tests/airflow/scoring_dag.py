"""A DAG file as a user writes one: score with RunBatchOperator, wait for _SUCCESS, then read the
output location from XCom in a downstream task. test_dag_test.py runs it with ``dag.test()``.

RUNBATCH_TEST_DATABASE names the seeded database; RUNBATCH_TEST_REPORT a file the last task writes.
"""

from __future__ import annotations

import json
import os
from datetime import datetime

from airflow.sdk import DAG, task

from runbatch.airflow import RunBatchOperator, RunbatchStageSensor

DATABASE = os.environ.get("RUNBATCH_TEST_DATABASE", "ML")

with DAG("runbatch_scoring", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
    score = RunBatchOperator(
        task_id="score",
        model_name="LINEAR",
        version_name="V1",
        X="INPUT",
        database=DATABASE,
        schema="PUBLIC",
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec={"base_stage_location": "@DATA/daily/"},
        poll_interval=0.5,
    )
    wait = RunbatchStageSensor(
        task_id="wait_for_success",
        stage_location="{{ ti.xcom_pull(task_ids='score')['output_stage_location'] }}",
        poke_interval=0.5,
    )

    @task
    def report(result: dict[str, str], seen: str) -> None:
        with open(os.environ["RUNBATCH_TEST_REPORT"], "w") as f:
            json.dump({"result": result, "sensor": seen}, f)

    score >> wait
    report(score.output, wait.output)


if __name__ == "__main__":
    run = dag.test()
    print(json.dumps({"state": str(run.state)}))
