"""Before compute: the stages file columns name, the error-row settings, and when failed rows fail a job."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.errors import InvalidArgumentError
from runbatch.ml.model.batch import JobSpec
from runbatch.stage.storage import open_storage
from server.jobs.failed_rows import threshold_exceeded
from server.jobs.file_stages import scan_stage_names
from server.jobs.validation import check_failed_rows


def test_the_distinct_stages_of_each_file_column_are_found(tmp_path: Path) -> None:
    storage = open_storage(f"file://{tmp_path}")
    first = {
        "A": ["@DB.S.ONE/x.png", "@DB.S.ONE/y.png", None, "  '@two/z.png'", '@"we/ird".S."x"/f.png'],
        "B": ["@ONE/a", "not a path", "@/nothing", "s3://bucket/key", "@ST"],
    }
    with storage.open_output_stream("in/0.parquet") as sink:
        pq.write_table(pa.table(first), sink, row_group_size=2)
    second = pa.table({"A": pa.array(["@DB.S.THREE/q"] * 3).dictionary_encode(), "B": ["@ONE/b"] * 3})
    with storage.open_output_stream("in/1.parquet") as sink:
        pq.write_table(second, sink)
    found = scan_stage_names(storage, ["in/0.parquet", "in/1.parquet"], ["A", "B"])
    assert found == {"A": {"DB.S.ONE", "two", '"we/ird".S."x"', "DB.S.THREE"}, "B": {"ONE", "ST"}}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (JobSpec(max_failed_rows=-1), "JobSpec.max_failed_rows must be 0 or more; got -1."),
        (
            JobSpec(max_failed_rows_fraction=1.5),
            "JobSpec.max_failed_rows_fraction must be between 0 and 1; got 1.5.",
        ),
        (
            JobSpec(fail_fast=True, max_failed_rows_fraction=0.1),
            "JobSpec.fail_fast fails the job on its first failed row, so max_failed_rows and "
            "max_failed_rows_fraction have no effect with it. Set fail_fast, or a threshold, not both.",
        ),
    ],
)
def test_error_row_settings_are_checked(spec: JobSpec, message: str) -> None:
    with pytest.raises(InvalidArgumentError) as exc:
        check_failed_rows(spec)
    assert str(exc.value) == message


def _job(failed: list[int], total: int, **job_spec: Any) -> Any:
    shards = [SimpleNamespace(rows_failed=f, rows_done=total // len(failed)) for f in failed]
    spec = {"request": {"job_spec": JobSpec(**job_spec).model_dump(mode="json")}}
    return SimpleNamespace(shards=shards, rows_total=total, spec=spec)


def test_failed_rows_fail_a_job_only_past_its_thresholds() -> None:
    hint = "The job's log names the first failed rows (job.get_logs())."
    assert threshold_exceeded(_job([0, 0], 10)) is None
    assert threshold_exceeded(_job([3, 4], 10)) is None  # no threshold: some rows succeeded
    assert threshold_exceeded(_job([5, 5], 10)) == f"All 10 input rows failed. {hint}"
    assert threshold_exceeded(_job([5, 5], 10, max_failed_rows=10)) is None
    assert threshold_exceeded(_job([3, 4], 10, max_failed_rows=7)) is None
    assert threshold_exceeded(_job([3, 5], 10, max_failed_rows=7)) == (
        f"8 of 10 input rows failed, more than JobSpec.max_failed_rows=7 allows. {hint}"
    )
    assert threshold_exceeded(_job([1, 1], 10, max_failed_rows_fraction=0.2)) is None
    assert threshold_exceeded(_job([1, 2], 10, max_failed_rows_fraction=0.2)) == (
        f"3 of 10 input rows failed (30.00%), more than JobSpec.max_failed_rows_fraction=0.2 allows. {hint}"
    )
    # A record written before these settings existed reads with their defaults.
    old = _job([1, 0], 10)
    for key in ("fail_fast", "max_failed_rows", "max_failed_rows_fraction"):
        del old.spec["request"]["job_spec"][key]
    assert threshold_exceeded(old) is None
