"""Model and job statements through session.sql: the same rows, checks and errors as the SDK's calls."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import pytest

from runbatch.errors import UnsupportedError
from runbatch.ml.jobs import list_jobs
from runbatch.ml.model.batch import OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Doubler

FRAME = pd.DataFrame({"X": [1.0, 2.0]})
POOL = "SYSTEM_COMPUTE_POOL_CPU"

MODEL_COLUMNS = [
    "created_on",
    "name",
    "model_type",
    "database_name",
    "schema_name",
    "comment",
    "owner",
    "default_version_name",
    "versions",
    "aliases",
]


def _rows(session: Session, sql: str) -> list[dict[str, Any]]:
    return [r.as_dict() for r in session.sql(sql).collect()]


def _status(session: Session, sql: str) -> str:
    (row,) = session.sql(sql).collect()
    return str(row.status)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """An SDK frame's rows as SQL results carry them: timestamps as ISO text, no value as None (not NaN)."""
    return [
        {k: v.isoformat() if isinstance(v, pd.Timestamp) else None if pd.isna(v) else v for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def _two_versions(session: Session) -> Registry:
    reg = Registry(session)
    reg.log_model(Doubler(), model_name="M", version_name="V1", sample_input_data=FRAME, comment="first")
    reg.log_model(Doubler(), model_name="M", version_name="V2", sample_input_data=FRAME)
    return reg


def test_show_models_and_versions_are_the_sdk_frames(session: Session, fresh_db: str) -> None:
    reg = _two_versions(session)
    models = session.sql("SHOW MODELS").collect()
    assert list(models[0]._fields) == MODEL_COLUMNS
    assert [r.as_dict() for r in models] == _records(reg.show_models())
    row = models[0].as_dict()
    assert {k: v for k, v in row.items() if k not in ("created_on", "owner")} == {
        "name": "M",
        "model_type": "custom",
        "database_name": fresh_db,
        "schema_name": "PUBLIC",
        "comment": None,
        "default_version_name": "V1",
        "versions": '["V1", "V2"]',
        "aliases": '{"DEFAULT": "V1", "FIRST": "V1", "LAST": "V2"}',
    }
    assert _rows(session, f"SHOW TERSE MODELS LIKE 'm%' IN SCHEMA {fresh_db}.PUBLIC") == [row]
    assert _rows(session, "SHOW MODELS LIKE 'X%'") == []
    assert row in _rows(session, "SHOW MODELS IN ACCOUNT")
    assert _rows(session, f"DESCRIBE MODEL {fresh_db}.PUBLIC.M") == [row]
    with pytest.raises(ValueError, match="Database 'NOPE_DB' does not exist or not authorized."):
        session.sql("SHOW MODELS IN DATABASE nope_db").collect()

    model = reg.get_model("M")
    versions = _rows(session, "SHOW VERSIONS IN MODEL m")
    assert versions == _records(model.show_versions())
    assert [(v["name"], v["aliases"], v["comment"], v["is_default_version"]) for v in versions] == [
        ("V1", '["DEFAULT", "FIRST"]', "first", True),
        ("V2", '["LAST"]', None, False),
    ]
    assert [v["name"] for v in _rows(session, f"SHOW VERSIONS LIKE 'v2' IN MODEL {fresh_db}.PUBLIC.M")] == [
        "V2"
    ]
    with pytest.raises(ValueError, match=f"Unable to find model {fresh_db}.PUBLIC.NOPE"):
        session.sql("SHOW VERSIONS IN MODEL nope").collect()

    (function,) = _rows(session, "SHOW FUNCTIONS IN MODEL M VERSION V2")
    assert function == {
        "created_on": versions[1]["created_on"],
        "name": "PREDICT",
        "version_name": "V2",
        "min_num_arguments": 1,
        "max_num_arguments": 2,
        "arguments": '[{"name": "X", "type": "FLOAT"}, {"name": "scale", "type": "FLOAT"}]',
        "return_type": "OBJECT",
        "description": "",
        "language": "PYTHON",
        "is_table_function": False,
    }
    # Without VERSION, the default version's functions.
    assert [f["version_name"] for f in _rows(session, "SHOW FUNCTIONS IN MODEL M")] == ["V1"]
    assert _rows(session, "SHOW FUNCTIONS LIKE 'explain' IN MODEL M") == []


def test_alter_model_is_seen_by_the_sdk(session: Session, fresh_db: str) -> None:
    reg = _two_versions(session)
    model = reg.get_model("M")
    done = "Statement executed successfully."
    assert _status(session, "ALTER MODEL M VERSION V2 SET ALIAS = champion") == done
    assert model.version("CHAMPION").version_name == "V2"
    assert (
        _status(session, f"ALTER MODEL {fresh_db}.PUBLIC.M SET DEFAULT_VERSION = 'v2' COMMENT = 'pricing'")
        == done
    )
    assert (model.default.version_name, model.comment) == ("V2", "pricing")
    assert _status(session, "COMMENT ON MODEL M IS $$priced$$") == done
    assert model.comment == "priced"
    assert _status(session, "ALTER MODEL M SET TAG stage = 'prod', team = 'ml'") == done
    assert model.show_tags() == {f"{fresh_db}.PUBLIC.STAGE": "prod", f"{fresh_db}.PUBLIC.TEAM": "ml"}
    assert _status(session, "ALTER MODEL M UNSET TAG stage") == done
    assert model.show_tags() == {f"{fresh_db}.PUBLIC.TEAM": "ml"}
    assert _status(session, "ALTER MODEL M MODIFY VERSION V1 SET COMMENT = 'old'") == done
    v1 = model.version("V1")
    assert v1.comment == "old"
    assert (
        _status(session, """ALTER MODEL M MODIFY VERSION V1 SET METADATA = '{"metrics": {"rmse": 0.5}}'""")
        == done
    )
    assert v1.show_metrics() == {"rmse": 0.5}
    (shown,) = _rows(session, "SHOW VERSIONS LIKE 'V1' IN MODEL M")
    assert (shown["comment"], shown["metadata"]) == ("old", '{"metrics": {"rmse": 0.5}}')
    assert json.loads(_rows(session, "SHOW MODELS")[0]["aliases"]) == {
        "DEFAULT": "V2",
        "FIRST": "V1",
        "LAST": "V2",
        "CHAMPION": "V2",
    }
    assert _status(session, "ALTER MODEL M VERSION champion UNSET ALIAS") == done
    with pytest.raises(ValueError, match="Unable to find version or alias with name CHAMPION"):
        model.version("CHAMPION")

    # The registry's own checks, with the messages the SDK gets.
    for sql, message in [
        (
            "ALTER MODEL M DROP VERSION V2",
            "Version V2 is the default version of model M and cannot be dropped. Set another default version "
            "first, or drop the model.",
        ),
        (
            "ALTER MODEL M VERSION V1 SET ALIAS = last",
            "LAST is a system alias and cannot be set on a version.",
        ),
        ("ALTER MODEL M VERSION V1 SET ALIAS = v2", "Alias V2 conflicts with a version name of the model."),
        (
            "ALTER MODEL M SET DEFAULT_VERSION = V9",
            "You cannot set version V9 as default version as it does not exist.",
        ),
        ("ALTER MODEL M UNSET TAG nope", f"Tag {fresh_db}.PUBLIC.NOPE is not set on model M."),
        (
            "ALTER MODEL M MODIFY VERSION V1 SET METADATA = '[1]'",
            "METADATA takes a JSON object of metrics only",
        ),
        ("ALTER MODEL NOPE SET COMMENT = 'x'", f"Unable to find model {fresh_db}.PUBLIC.NOPE"),
    ]:
        with pytest.raises(ValueError) as exc:
            session.sql(sql).collect()
        assert str(exc.value).startswith(message), sql
    with pytest.raises(ValueError) as exc:
        model.delete_version("V2")
    assert str(exc.value).startswith("Version V2 is the default version of model M and cannot be dropped.")
    assert _status(session, "ALTER MODEL IF EXISTS NOPE SET COMMENT = 'x'") == done
    with pytest.raises(UnsupportedError, match="ALTER MODEL ... RENAME TO is not supported"):
        session.sql("ALTER MODEL M RENAME TO N").collect()

    assert _status(session, "ALTER MODEL M DROP VERSION V1") == done
    assert [v.version_name for v in model.versions()] == ["V2"]
    assert [v["name"] for v in _rows(session, "SHOW VERSIONS IN MODEL M")] == ["V2"]


def test_drop_model(session: Session, fresh_db: str) -> None:
    reg = _two_versions(session)
    assert _status(session, "DROP MODEL M") == "M successfully dropped."
    assert reg.show_models().empty
    assert list(reg.show_models().columns) == MODEL_COLUMNS
    assert _rows(session, "SHOW MODELS") == []
    assert (
        _status(session, "DROP MODEL IF EXISTS M")
        == "Drop statement executed successfully (M already dropped)."
    )
    with pytest.raises(ValueError, match=f"Unable to find model {fresh_db}.PUBLIC.M"):
        session.sql("DROP MODEL M").collect()
    # The name is free again, and the new model is a new one.
    again = reg.log_model(Doubler(), model_name="M", version_name="V1", sample_input_data=FRAME)
    assert [v.version_name for v in reg.get_model("M").versions()] == [again.version_name]


def test_show_and_describe_job_services(session: Session, fresh_db: str) -> None:
    mv = Registry(session).log_model(Doubler(), model_name="M", sample_input_data=FRAME)
    job = mv.run_batch(
        session.create_dataframe(FRAME), compute_pool=POOL, output_spec=OutputSpec(stage_location="@DATA/o/")
    )
    assert job.wait(120) == "DONE", job.get_logs()
    (row,) = _rows(session, "SHOW JOB SERVICES")
    (listed,) = list_jobs(session=session).to_dict("records")
    assert {
        k: row[k] for k in ("name", "status", "database_name", "schema_name", "owner", "compute_pool")
    } == {
        "name": job.name,
        "status": "DONE",
        "database_name": fresh_db,
        "schema_name": "PUBLIC",
        "owner": listed["owner"],
        "compute_pool": POOL,
    }
    assert (row["created_on"], row["updated_on"]) == (
        listed["created_time"].isoformat(),
        listed["completed_time"].isoformat(),
    )
    assert {
        k: row[k] for k in ("current_instances", "target_instances", "is_job", "is_async_job", "auto_resume")
    } == {
        "current_instances": 0,
        "target_instances": 1,
        "is_job": True,
        "is_async_job": True,
        "auto_resume": False,
    }
    assert _rows(
        session, f"SHOW JOB SERVICES LIKE 'batch_inference%' IN SCHEMA {fresh_db}.PUBLIC LIMIT 1"
    ) == [row]
    assert _rows(session, f"SHOW JOB SERVICES IN {fresh_db}.PUBLIC STARTS WITH 'BATCH_INFERENCE_'") == [row]
    assert _rows(session, "SHOW JOB SERVICES LIKE 'MLJOB_%' IN DATABASE") == []
    assert row in _rows(session, f"SHOW JOB SERVICES IN COMPUTE POOL {POOL}")
    assert job.name not in [
        r["name"] for r in _rows(session, "SHOW JOB SERVICES IN COMPUTE POOL SYSTEM_COMPUTE_POOL_GPU")
    ]

    (described,) = _rows(session, f"DESC JOB SERVICE {job.name}")
    assert list(described)[:7] == [
        "name",
        "status",
        "database_name",
        "schema_name",
        "owner",
        "compute_pool",
        "spec",
    ]
    assert {k: v for k, v in described.items() if k != "spec"} == row
    assert "stage_location: '@DATA/o/'" in described["spec"]
    assert _rows(session, f"DESCRIBE SERVICE {fresh_db}.PUBLIC.{job.name}") == [described]
    with pytest.raises(ValueError, match=f"Job {fresh_db}.PUBLIC.NOPE does not exist or not authorized."):
        session.sql("DESC JOB SERVICE nope").collect()
