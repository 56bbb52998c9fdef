"""session.sql SELECT over stage files and tables, save_as_table / session.table, SHOW and DROP TABLE."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.compute  # noqa: F401 - pa.compute
import pyarrow.parquet as pq
import pytest

from runbatch.errors import UnsupportedError
from runbatch.snowpark import Session


def _put_parquet(session: Session, tmp_path, name: str, table: pa.Table, target: str) -> None:  # type: ignore[no-untyped-def]
    pq.write_table(table, tmp_path / name)
    session.file.put(str(tmp_path / name), target)


def test_select_over_stage_files(session: Session, fresh_db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    _put_parquet(session, tmp_path, "a.parquet", pa.table({"ID": [1, 2], "TEXT": ["x", "y"]}), "@DATA/in/")
    _put_parquet(session, tmp_path, "b.parquet", pa.table({"ID": [3], "TEXT": ["z"]}), "@DATA/in/")
    (tmp_path / "_SUCCESS").write_text("")
    session.file.put(str(tmp_path / "_SUCCESS"), "@DATA/in/")
    rows = session.sql("select id, upper(text) as t from @data/in/ where id >= 2 order by id").collect()
    assert [(r.ID, r.T) for r in rows] == [(2, "Y"), (3, "Z")]
    only_b = session.sql(
        f"SELECT COUNT(*) AS n FROM @{fresh_db}.PUBLIC.DATA/in/ (PATTERN => '.*b[.]parquet')"
    ).collect()
    assert only_b[0].N == 1
    with pytest.raises(ValueError, match=r"No Parquet files found at @.*DATA/missing/"):
        session.sql("SELECT * FROM @DATA/missing/").collect()


def test_save_as_table_modes_and_read_back(session: Session, fresh_db: str) -> None:
    df = session.create_dataframe(pd.DataFrame({"ID": [1, 2], "NAME": ["a", "b"]}))
    df.write.mode("overwrite").save_as_table(f"{fresh_db}.PUBLIC.PEOPLE")
    assert [tuple(r) for r in session.table("people").collect()] == [(1, "a"), (2, "b")]
    session.create_dataframe([[3, "c"]], schema=["id", "name"]).write.save_as_table("PEOPLE", mode="append")
    assert session.sql("SELECT SUM(id) AS total, COUNT(*) AS n FROM people").collect()[0].as_dict() == {
        "TOTAL": 6,
        "N": 3,
    }
    with pytest.raises(ValueError, match=f"Table '{fresh_db}.PUBLIC.PEOPLE' already exists"):
        df.write.save_as_table("PEOPLE")
    session.create_dataframe([[9, "z"]], schema=["ID", "NAME"]).write.mode("ignore").saveAsTable("PEOPLE")
    assert session.table(["PEOPLE"]).count() == 3
    with pytest.raises(ValueError, match="Cannot append to .*PEOPLE: its columns are"):
        session.create_dataframe([[1]], schema=["OTHER"]).write.mode("append").save_as_table("PEOPLE")
    df.write.mode("overwrite").save_as_table("PEOPLE")
    joined = session.sql(
        "WITH p AS (SELECT * FROM people) SELECT p.name, s.id * 10 AS x FROM p JOIN public.people s ON p.id = s.id "
        "ORDER BY x"
    ).collect()
    assert [tuple(r) for r in joined] == [("a", 10), ("b", 20)]
    shown = session.sql("SHOW TABLES").collect()
    assert [(r["name"], r["rows"], r["kind"], r["database_name"]) for r in shown] == [
        ("PEOPLE", 2, "TABLE", fresh_db)
    ]
    assert session.sql("DROP TABLE people").collect()[0].status == "PEOPLE successfully dropped."
    assert session.sql("DROP TABLE IF EXISTS people").collect()[0].status == (
        "Drop statement executed successfully (PEOPLE already dropped)."
    )
    with pytest.raises(ValueError, match=f"Table '{fresh_db}.PUBLIC.PEOPLE' does not exist"):
        session.table("PEOPLE").collect()


def test_dropping_a_schema_drops_its_tables(session: Session, fresh_db: str) -> None:
    session.sql("CREATE SCHEMA S2").collect()
    session.create_dataframe([[1]], schema=["A"]).write.save_as_table("T1")
    session.sql(f"DROP SCHEMA {fresh_db}.S2").collect()
    session.sql("CREATE SCHEMA S2").collect()
    assert session.sql("SHOW TABLES").collect() == []
    with pytest.raises(ValueError, match="does not exist"):
        session.table("T1").collect()


def test_large_result_streams_in_batches(session: Session, fresh_db: str) -> None:
    session.create_dataframe(pa.table({"I": pa.array(range(200_000))})).write.save_as_table("BIG")
    reader = session._conn.query("SELECT i * 2 AS j FROM big")
    sizes, total = [], 0
    for batch in reader:
        sizes.append(batch.num_rows)
        total += pa.compute.sum(batch.column(0)).as_py()
    assert sum(sizes) == 200_000 and len(sizes) > 1  # several record batches, not one buffered result
    assert total == 2 * sum(range(200_000))


def test_unsupported_queries_fail_clearly(session: Session, fresh_db: str) -> None:
    with pytest.raises(UnsupportedError, match=r"Session variables \(\$limit_rows\) are not supported"):
        session.sql("SELECT a FROM @DATA/x WHERE a < $limit_rows").collect()
    with pytest.raises(UnsupportedError, match=r"the source .READ_TEXT\('/etc/passwd'\). is not supported"):
        session.sql("SELECT * FROM read_text('/etc/passwd')").collect()
    with pytest.raises(ValueError, match="SQL compilation error: .*NOPE"):
        session.sql("SELECT nope FROM (SELECT 1 AS a)").collect()
