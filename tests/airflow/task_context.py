"""The context Airflow's task runner hands to an operator, built the Task SDK's way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any


def task_context(task: Any, *, try_number: int = 1, run_id: str | None = None) -> Any:
    """The context Airflow's task runner hands to ``execute``: a RuntimeTaskInstance (the Task SDK's
    task instance) with the API server's run context, rendered templates included."""
    from airflow.sdk.api.datamodels._generated import DagRun, DagRunState, DagRunType, TIRunContext
    from airflow.sdk.execution_time.task_runner import RuntimeTaskInstance

    now = datetime.now(UTC)
    run_id = run_id or f"manual__{now.isoformat()}"
    dag_run = DagRun(
        dag_id=task.dag.dag_id,
        run_id=run_id,
        logical_date=now,
        data_interval_start=now,
        data_interval_end=now,
        run_after=now,
        start_date=now,
        end_date=None,
        run_type=DagRunType.MANUAL,
        state=DagRunState.RUNNING,
        consumed_asset_events=[],
        partition_key=None,
    )
    ti = RuntimeTaskInstance.model_construct(
        id=uuid.uuid4(),
        task_id=task.task_id,
        dag_id=task.dag.dag_id,
        run_id=run_id,
        try_number=try_number,
        map_index=-1,
        dag_version_id=uuid.uuid4(),
        task=task,
        start_date=now,
        max_tries=task.retries,
    )
    ti._ti_context_from_server = TIRunContext(dag_run=dag_run, max_tries=task.retries)
    context = ti.get_template_context()
    task.render_template_fields(context)
    return context
