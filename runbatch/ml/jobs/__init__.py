"""Mirror of ``snowflake.ml.jobs`` (batch inference jobs)."""

from runbatch.ml.jobs._job import JOB_STATUS, TERMINAL_JOB_STATUSES, MLJob
from runbatch.ml.jobs._manager import delete_job, get_job, list_jobs

__all__ = ["JOB_STATUS", "TERMINAL_JOB_STATUSES", "MLJob", "delete_job", "get_job", "list_jobs"]
