from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

from runbatch.wire.jobs import JobPublic
from runbatch.wire.listings import (
    JOB_SERVICE_COLUMNS,
    MODEL_COLUMNS,
    job_service_listing,
    model_listing,
)
from runbatch.wire.registry import ModelPublic

CREATED = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def _model(**changes: object) -> ModelPublic:
    fields: dict[str, object] = {
        "database_name": "ML",
        "schema_name": "PUBLIC",
        "name": "PRICE",
        "comment": None,
        "owner": "admin",
        "created_on": CREATED,
        "model_type": "sklearn",
        "default_version_name": "V2",
        "versions": ["V1", "V2", "V3"],
        "aliases": {"PROD": "V2", "CANARY": "V3"},
        "tags": {},
    }
    fields.update(changes)
    return ModelPublic.model_validate(fields)


def test_a_model_row_lists_system_aliases_then_its_own() -> None:
    row = model_listing(_model())
    assert list(row) == MODEL_COLUMNS
    assert row == {
        "created_on": CREATED,
        "name": "PRICE",
        "model_type": "sklearn",
        "database_name": "ML",
        "schema_name": "PUBLIC",
        "comment": None,
        "owner": "admin",
        "default_version_name": "V2",
        "versions": '["V1", "V2", "V3"]',
        "aliases": '{"DEFAULT": "V2", "FIRST": "V1", "LAST": "V3", "CANARY": "V3", "PROD": "V2"}',
    }


def test_a_model_without_versions_has_no_aliases() -> None:
    row = model_listing(_model(versions=[], aliases={}, default_version_name=None, model_type=None))
    assert (row["versions"], row["aliases"], row["model_type"]) == ("[]", "{}", None)


def _job(status: str, finished: datetime | None) -> JobPublic:
    return JobPublic(
        uuid=uuid.UUID(int=1),
        id="ML.PUBLIC.JOB_1",
        database_name="ML",
        schema_name="PUBLIC",
        name="JOB_1",
        status=status,
        phase="FINISHED" if finished else "RUNNING",
        message="",
        owner="admin",
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        model_name="ML.PUBLIC.PRICE",
        version_name="V1",
        function_name="PREDICT",
        output_location="@ML.PUBLIC.DATA/out/",
        input_location="@ML.PUBLIC.DATA/out/_temporary/",
        replicas=2,
        rows_total=10,
        rows_done=10,
        rows_failed=0,
        shards_total=2,
        shards_done=2,
        shards_failed=0,
        created_at=CREATED,
        input_ready_at=CREATED.replace(second=6),
        started_at=CREATED.replace(second=7),
        finished_at=finished,
        spec={"b": 1, "a": 2},
    )


def test_a_finished_job_is_a_done_job_service() -> None:
    finished = CREATED.replace(second=9)
    row = job_service_listing(_job("DONE", finished))
    assert list(row) == JOB_SERVICE_COLUMNS
    assert {k: row[k] for k in ("name", "status", "current_instances", "target_instances", "is_job")} == {
        "name": "JOB_1",
        "status": "DONE",
        "current_instances": 0,
        "target_instances": 2,
        "is_job": True,
    }
    assert (row["created_on"], row["resumed_on"], row["updated_on"]) == (
        CREATED,
        CREATED.replace(second=7),
        finished,
    )
    # The digest depends on the spec's content, not on its key order.
    assert (
        row["spec_digest"]
        == job_service_listing(_job("DONE", finished).model_copy(update={"spec": {"a": 2, "b": 1}}))[
            "spec_digest"
        ]
    )
    assert len(row["spec_digest"]) == 64


def test_a_running_job_counts_its_instances() -> None:
    row = job_service_listing(_job("RUNNING", None))
    assert (row["current_instances"], row["updated_on"]) == (2, CREATED.replace(second=7))
    assert json.dumps(row, default=str)  # every value is JSON-ready
