"""session.sql for the resource statements a notebook needs, and stage file transfers."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from runbatch.errors import UnsupportedError
from runbatch.snowpark import Session


def test_namespace_statements(session: Session) -> None:
    db = f"SQL_{uuid.uuid4().hex[:8].upper()}"
    assert session.sql(f"CREATE DATABASE {db}").collect()[0].status == f"Database {db} successfully created."
    assert session.get_current_database() == f'"{db}"' and session.get_current_schema() == '"PUBLIC"'
    assert session.sql(f"create database if not exists {db.lower()}").collect()[0]["status"] == (
        f"{db} already exists, statement succeeded."
    )
    with pytest.raises(ValueError, match=f"Database '{db}' already exists."):
        session.sql(f"CREATE DATABASE {db}").collect()
    assert session.sql("CREATE SCHEMA REG").collect()[0].status == "Schema REG successfully created."
    assert session.get_current_schema() == '"REG"'
    session.sql("CREATE OR REPLACE STAGE my_stage COMMENT = 'models'").collect()
    session.sql(f'CREATE STAGE IF NOT EXISTS {db}.REG."Mixed Case"').collect()
    stages = session.sql("SHOW STAGES").collect()
    assert [(r["name"], r["comment"]) for r in stages] == [("MY_STAGE", "models"), ("Mixed Case", "")]
    pool = f"POOL_{uuid.uuid4().hex[:6].upper()}"
    session.sql(f"CREATE COMPUTE POOL {pool} MIN_NODES=1 MAX_NODES=2 INSTANCE_FAMILY=CPU_X64_XS").collect()
    pools = {r["name"]: r for r in session.sql("SHOW COMPUTE POOLS").collect()}
    assert (pools[pool]["min_nodes"], pools[pool]["max_nodes"], pools[pool]["instance_family"]) == (
        1,
        2,
        "CPU_X64_XS",
    )
    assert "SYSTEM_COMPUTE_POOL_CPU" in pools and "SYSTEM_COMPUTE_POOL_GPU" in pools
    with pytest.raises(ValueError, match="Unknown INSTANCE_FAMILY 'BIG'"):
        session.sql("CREATE COMPUTE POOL X MIN_NODES=1 MAX_NODES=1 INSTANCE_FAMILY=BIG").collect()
    session.sql(f"DROP COMPUTE POOL {pool}").collect()
    session.use_schema("PUBLIC")
    assert session.get_current_schema() == '"PUBLIC"'
    assert session.sql(f"DROP SCHEMA {db}.REG").collect()[0].status == "REG successfully dropped."
    with pytest.raises(ValueError, match=f"Schema '{db}.REG' does not exist or not authorized."):
        session.use_schema("REG")
    with pytest.raises(
        UnsupportedError, match="Privileges on DATABASE objects are not supported: runbatch grants"
    ):
        session.sql("GRANT USAGE ON DATABASE X TO ROLE R").collect()
    with pytest.raises(ValueError, match="SQL compilation error: expected an identifier"):
        session.sql("CREATE DATABASE ;").collect()
    session.sql(f"DROP DATABASE {db}").collect()
    assert session.get_current_database() is None


def test_files_list_remove_put_get(session: Session, fresh_db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    for name in ("a.csv", "b.csv", "c.json"):
        (tmp_path / name).write_text(name * 3)
    results = session.file.put(str(tmp_path / "*.csv"), "@DATA/dir/")
    assert [(r.source, r.status) for r in results] == [("a.csv", "UPLOADED"), ("b.csv", "UPLOADED")]
    session.file.put(str(tmp_path / "c.json"), "@DATA/dir/sub")
    rows = session.sql("LIST @DATA/dir/").collect()
    assert [r.name for r in rows] == ["data/dir/a.csv", "data/dir/b.csv", "data/dir/sub/c.json"]
    assert [r.size for r in rows] == [15, 15, 18]
    assert rows[0].md5 == "d1d6bc5b2b0c2a78e8c4b1dbd7bc6f3a" or len(rows[0].md5) == 32
    assert [r.name for r in session.sql("LS @DATA/dir/ PATTERN='.*[.]csv'").collect()] == [
        "data/dir/a.csv",
        "data/dir/b.csv",
    ]
    assert [r.name for r in session.sql("LIST @DATA/dir/a").collect()] == ["data/dir/a.csv"]
    fetched = session.file.get("@DATA/dir/", str(tmp_path / "back"))
    assert sorted(r.file.rsplit("back/", 1)[1] for r in fetched) == ["a.csv", "b.csv", "sub/c.json"]
    assert (tmp_path / "back" / "sub" / "c.json").read_text() == "c.json" * 3
    removed = session.sql("REMOVE @DATA/dir/ PATTERN='.*b[.]csv'").collect()
    assert [(r.name, r.result) for r in removed] == [("data/dir/b.csv", "removed")]
    session.sql("RM @DATA/dir/sub").collect()
    assert [r.name for r in session.sql("LIST @DATA/").collect()] == ["data/dir/a.csv"]
    with pytest.raises(ValueError, match="contains '..', which would leave its stage"):
        session.sql("LIST @DATA/../../").collect()
    with pytest.raises(ValueError, match="Stage '.*NOPE' does not exist or not authorized."):
        session.sql("LIST @NOPE").collect()


def test_create_dataframe_and_show(session: Session, capsys: pytest.CaptureFixture[str]) -> None:
    frame = session.create_dataframe([(1, "one"), (2, "two")], schema=["id", "Name"])
    assert frame.columns == ["ID", "NAME"]
    assert frame.count() == 2
    assert [r.as_dict() for r in frame.collect()] == [{"ID": 1, "NAME": "one"}, {"ID": 2, "NAME": "two"}]
    frame.show()
    assert capsys.readouterr().out == (
        "-----------------\n"
        '|"ID"  |"NAME"  |\n'
        "-----------------\n"
        "|1     |one     |\n"
        "|2     |two     |\n"
        "-----------------\n\n"
    )
    single = session.create_dataframe(["x", "y"], schema=["messages"])
    assert single.to_pandas().to_dict("list") == {"MESSAGES": ["x", "y"]}


def test_describe_database_schema_stage_table_and_pool(session: Session, fresh_db: str) -> None:
    frame = pd.DataFrame(
        {
            "ID": pd.array([1, 2], dtype="int64"),
            "NAME": ["a", None],
            "SCORE": [0.5, 1.5],
            "OK": [True, False],
            "AT": pd.to_datetime(["2024-01-01", "2024-01-02"]),
        }
    )
    session.create_dataframe(frame).write.save_as_table("SCORES")
    columns = session.sql(f"DESC TABLE {fresh_db}.PUBLIC.SCORES").collect()
    assert list(columns[0]._fields) == [
        "name",
        "type",
        "kind",
        "null?",
        "default",
        "primary key",
        "unique key",
        "check",
        "expression",
        "comment",
        "policy name",
        "privacy domain",
    ]
    assert [(c.name, c.type, c.kind, c["null?"], c["primary key"], c.default) for c in columns] == [
        ("ID", "NUMBER(38,0)", "COLUMN", "Y", "N", None),
        ("NAME", "VARCHAR(16777216)", "COLUMN", "Y", "N", None),
        ("SCORE", "FLOAT", "COLUMN", "Y", "N", None),
        ("OK", "BOOLEAN", "COLUMN", "Y", "N", None),
        # Tables are Parquet, which keeps timestamps to the microsecond.
        ("AT", "TIMESTAMP_NTZ(6)", "COLUMN", "Y", "N", None),
    ]
    assert [(r.name, r.kind) for r in session.sql(f"DESCRIBE DATABASE {fresh_db}").collect()] == [
        ("PUBLIC", "SCHEMA")
    ]
    assert [(r.name, r.kind) for r in session.sql("DESC SCHEMA PUBLIC").collect()] == [
        ("DATA", "STAGE"),
        ("SCORES", "TABLE"),
    ]
    stage = [r.as_dict() for r in session.sql("DESC STAGE DATA").collect()]
    assert stage == [
        {
            "parent_property": "STAGE_LOCATION",
            "property": "URL",
            "property_type": "String",
            "property_value": "",
            "property_default": "",
        },
        {
            "parent_property": "STAGE_LOCATION",
            "property": "ENDPOINT",
            "property_type": "String",
            "property_value": "",
            "property_default": "",
        },
        {
            "parent_property": "STAGE_LOCATION",
            "property": "REGION",
            "property_type": "String",
            "property_value": "",
            "property_default": "",
        },
        {
            "parent_property": "STAGE_CREDENTIALS",
            "property": "HAS_CREDENTIALS",
            "property_type": "Boolean",
            "property_value": "false",
            "property_default": "false",
        },
        {
            "parent_property": "DIRECTORY",
            "property": "ENABLE",
            "property_type": "Boolean",
            "property_value": "false",
            "property_default": "false",
        },
    ]
    (pool,) = session.sql("DESC COMPUTE POOL SYSTEM_COMPUTE_POOL_CPU").collect()
    shown = {r.name: r.as_dict() for r in session.sql("SHOW COMPUTE POOLS").collect()}
    assert pool.as_dict() == shown["SYSTEM_COMPUTE_POOL_CPU"]
    with pytest.raises(ValueError, match=f"Table '{fresh_db}.PUBLIC.NOPE' does not exist or not authorized."):
        session.sql("DESC TABLE nope").collect()
    with pytest.raises(ValueError, match="Compute pool 'NOPE' does not exist or not authorized."):
        session.sql("DESC COMPUTE POOL nope").collect()
