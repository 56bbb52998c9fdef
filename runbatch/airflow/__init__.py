"""Airflow integration: run a batch inference job as a step of an Airflow DAG.

Install with ``pip install 'runbatch[airflow]'`` (Airflow 3). Only this package imports Airflow.
"""

from __future__ import annotations

from runbatch.airflow.hook import RunbatchHook
from runbatch.airflow.operators import RunBatchOperator
from runbatch.airflow.sensors import RunbatchStageSensor
from runbatch.airflow.triggers import RunbatchJobTrigger, RunbatchStageFileTrigger

__all__ = [
    "RunBatchOperator",
    "RunbatchHook",
    "RunbatchJobTrigger",
    "RunbatchStageFileTrigger",
    "RunbatchStageSensor",
]
