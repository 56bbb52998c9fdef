"""Error rows (runbatch's extension): when the rows that failed make a finished job fail.

Rows a runtime cannot process are written to error files and committed under
``<output>/_errors/``; the job still succeeds unless ``JobSpec.max_failed_rows`` or
``JobSpec.max_failed_rows_fraction`` is exceeded, or, with neither set, no row succeeded at all.
(``JobSpec.fail_fast`` never gets here: its runtimes fail on the first failed row.)
"""

from __future__ import annotations

from runbatch.ml.model.batch import JobSpec
from server.db.tables import JobRow

__all__ = ["ERRORS_FOLDER", "threshold_exceeded"]

ERRORS_FOLDER = "_errors"


def threshold_exceeded(job: JobRow) -> str | None:
    """Why ``job`` fails for its failed rows (the message of the FAILED job), or None when it does not."""
    failed = sum(s.rows_failed for s in job.shards)
    if not failed:
        return None
    total = job.rows_total or sum(s.rows_done for s in job.shards)
    job_spec = JobSpec.model_validate(job.spec["request"]["job_spec"])
    count, fraction = job_spec.max_failed_rows, job_spec.max_failed_rows_fraction
    where = "The job's log names the first failed rows (job.get_logs())."
    if count is not None and failed > count:
        return f"{failed} of {total} input rows failed, more than JobSpec.max_failed_rows={count} allows. {where}"
    if fraction is not None and failed > fraction * total:
        return (
            f"{failed} of {total} input rows failed ({failed / total:.2%}), more than "
            f"JobSpec.max_failed_rows_fraction={fraction} allows. {where}"
        )
    if count is None and fraction is None and failed >= total:
        return f"All {total} input rows failed. {where}"
    return None
