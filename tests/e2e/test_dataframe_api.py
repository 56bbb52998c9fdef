"""The Snowpark DataFrame API: operations compile to one query that runs on the control plane,
over tables, stage files, session.sql queries and local rows alike."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.errors import UnsupportedError
from runbatch.ml.model.batch import OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Row, Session
from runbatch.snowpark import functions as F
from runbatch.snowpark.types import DoubleType, LongType, StringType, StructField, StructType
from tests.e2e.models import Doubler

PEOPLE = pd.DataFrame(
    {
        "ID": [1, 2, 3, 4, 5],
        "NAME": ["ann", "bob", "cy", "dee", None],
        "DEPT": ["eng", "eng", "ops", "ops", "eng"],
        "SALARY": [100.0, 80.0, 70.0, None, 90.0],
    }
)


def _people(session: Session) -> None:
    session.create_dataframe(PEOPLE).write.mode("overwrite").save_as_table("PEOPLE")


def test_select_filter_with_column_drop_sort_limit(session: Session, fresh_db: str) -> None:
    _people(session)
    df = session.table("people")
    assert df.columns == ["ID", "NAME", "DEPT", "SALARY"]
    out = (
        df.filter((F.col("salary") >= 80) & ~F.col("name").is_null())
        .with_column("bonus", F.col("salary") * 0.1 + 1)
        .with_column("NAME", F.upper(F.col("name")))
        .drop("dept")
        .sort(F.col("bonus").desc())
    )
    assert out.columns == ["ID", "SALARY", "BONUS", "NAME"]
    assert [tuple(r) for r in out.collect()] == [(1, 100.0, 11.0, "ANN"), (2, 80.0, 9.0, "BOB")]
    assert out.count() == 2
    picked = df.select("id", F.col("name").alias("who"), (F.col("id") * 10).as_("x")).where(
        F.col("id").isin([2, 4, 9])
    )
    assert [r.as_dict() for r in picked.order_by("id").collect()] == [
        {"ID": 2, "WHO": "bob", "X": 20},
        {"ID": 4, "WHO": "dee", "X": 40},
    ]
    # NULLs sort first ascending and last descending, as in Snowpark.
    assert [r.SALARY for r in df.sort("salary").select("salary").collect()] == [None, 70.0, 80.0, 90.0, 100.0]
    assert [r.ID for r in df.sort("dept", "salary", ascending=[True, False]).limit(3).collect()] == [1, 5, 2]
    assert [r.ID for r in df.sort("id").limit(2, offset=1).collect()] == [2, 3]
    assert df.filter("SALARY < 90").count() == 2  # SQL text works as a condition, as in Snowpark
    assert df.schema == StructType(
        [
            StructField("ID", LongType()),
            StructField("NAME", StringType()),
            StructField("DEPT", StringType()),
            StructField("SALARY", DoubleType()),
        ]
    )


def test_group_by_agg_and_functions(session: Session, fresh_db: str) -> None:
    _people(session)
    df = session.table("PEOPLE")
    grouped = (
        df.group_by("dept")
        .agg(
            F.sum("salary").alias("total"),
            F.avg(F.col("salary")).alias("mean"),
            F.min("id").alias("lo"),
            F.max("id").alias("hi"),
            F.count("salary").alias("n_salary"),
            F.count("*").alias("n"),
            F.count_distinct("name").alias("names"),
        )
        .sort("dept")
    )
    assert [r.as_dict() for r in grouped.collect()] == [
        {"DEPT": "eng", "TOTAL": 270.0, "MEAN": 90.0, "LO": 1, "HI": 5, "N_SALARY": 3, "N": 3, "NAMES": 2},
        {"DEPT": "ops", "TOTAL": 70.0, "MEAN": 70.0, "LO": 3, "HI": 4, "N_SALARY": 1, "N": 2, "NAMES": 2},
    ]
    assert [tuple(r) for r in df.group_by(F.col("dept")).count().sort("dept").collect()] == [
        ("eng", 3),
        ("ops", 2),
    ]
    assert [tuple(r) for r in df.agg({"id": "max"}, ("salary", "min")).collect()] == [(5, 70.0)]
    labelled = df.select(
        "id",
        F.when(F.col("salary") >= 90, F.lit("high"))
        .when(F.col("salary").is_null(), "unknown")
        .otherwise("low")
        .alias("band"),
        F.concat(F.lower(F.lit("ID-")), F.col("id").cast("varchar")).alias("tag"),
        F.coalesce(F.col("name"), F.lit("?")).alias("name"),
        (F.col("id") % 2 == 1).alias("odd"),
        ((10 - F.col("id")) * 2 / 4).alias("half"),
        (-F.col("id")).alias("neg"),
    ).sort("id")
    assert [tuple(r) for r in labelled.collect()] == [
        (1, "high", "id-1", "ann", True, 4.5, -1),
        (2, "low", "id-2", "bob", False, 4.0, -2),
        (3, "low", "id-3", "cy", True, 3.5, -3),
        (4, "unknown", "id-4", "dee", False, 3.0, -4),
        (5, "high", "id-5", "?", True, 2.5, -5),
    ]
    assert df.filter(F.col("id").isin([])).count() == 0
    assert df.filter((F.col("id") == 1) | (F.col("id") > 4)).count() == 2


def test_join_union_distinct(session: Session, fresh_db: str) -> None:
    _people(session)
    people = session.table("PEOPLE")
    depts = session.create_dataframe([["eng", "Engineering"], ["hr", "People"]], schema=["dept", "title"])
    by_name = people.join(depts, on="dept", how="left").select("id", "dept", "title").sort("id")
    assert [tuple(r) for r in by_name.collect()] == [
        (1, "eng", "Engineering"),
        (2, "eng", "Engineering"),
        (3, "ops", None),
        (4, "ops", None),
        (5, "eng", "Engineering"),
    ]
    full = people.join(depts, "DEPT", how="outer").group_by("dept").agg(F.count("id").alias("n")).sort("dept")
    assert [tuple(r) for r in full.collect()] == [("eng", 3), ("hr", 0), ("ops", 2)]
    renamed = depts.with_column_renamed("dept", "d")
    on_expr = people.join(renamed, people["DEPT"] == renamed["D"])
    assert on_expr.columns == ["ID", "NAME", "DEPT", "SALARY", "D", "TITLE"]
    assert on_expr.count() == 3
    assert [r.ID for r in people.join(depts, on="dept", how="anti").sort("id").collect()] == [3, 4]
    assert people.join(depts, on="dept", how="semi").count() == 3
    with pytest.raises(ValueError, match=r"Both sides of the join have the columns \['DEPT'\]"):
        people.join(depts, people["DEPT"] == depts["DEPT"]).collect()
    suffixed = people.join(depts, people["DEPT"] == depts["DEPT"], lsuffix="_L", rsuffix="_R")
    assert suffixed.columns == ["ID", "NAME", "DEPT_L", "SALARY", "DEPT_R", "TITLE"]
    both = people.select("dept").union_all(depts.select("dept"))
    assert both.count() == 7
    assert sorted(r.DEPT for r in both.distinct().collect()) == ["eng", "hr", "ops"]
    assert people.select("id").join(depts.select("title"), how="cross").count() == 10


def test_local_rows_sql_and_stage_sources(session: Session, fresh_db: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    local = session.create_dataframe(
        [[1, "a", dt.date(2024, 1, 2), Decimal("1.50")], [2, "it's \\ ok", None, None]],
        schema=["id", "text", "day", "amount"],
    )
    assert local.filter(F.col("id") > 0).columns == ["ID", "TEXT", "DAY", "AMOUNT"]
    assert local.filter(F.col("id") > 0).collect() == [
        Row(ID=1, TEXT="a", DAY=dt.date(2024, 1, 2), AMOUNT=1.5),
        Row(ID=2, TEXT="it's \\ ok", DAY=None, AMOUNT=None),
    ]
    assert local.select(F.col("text")).limit(1).collect() == [Row(TEXT="a")]
    empty = session.create_dataframe(pd.DataFrame({"A": pd.Series([], dtype="int64")}))
    assert empty.filter(F.col("a") > 0).count() == 0
    query = session.sql("select 1 as a, 'x' as b; ")
    assert [tuple(r) for r in query.with_column("c", F.col("a") + 1).collect()] == [(1, "x", 2)]
    shown = session.sql("SHOW STAGES").select('"name"').collect()
    assert shown == [Row(name="DATA")]
    pq.write_table(pa.table({"ID": [1, 2, 3], "V": [0.5, 1.5, 2.5]}), tmp_path / "a.parquet")
    session.file.put(str(tmp_path / "a.parquet"), "@DATA/in/")
    staged = session.read.option("pattern", r".*\.parquet").parquet("@DATA/in/")
    assert staged.filter(F.col("v") > 1).select(F.sum("v").alias("s")).collect() == [Row(S=4.0)]
    assert staged.columns == ["ID", "V"]
    with pytest.raises(UnsupportedError, match=r'Column "L" of type list<item: int64> cannot be sent inline'):
        session.create_dataframe(pa.table({"L": [[1]]})).filter(F.lit(True)).collect()


def test_show_count_pushdown_and_batches(
    session: Session, fresh_db: str, capsys: pytest.CaptureFixture[str]
) -> None:
    session.create_dataframe([[1, "a"], [2, None], [3, "x" * 60]], schema=["id", "name"]).write.save_as_table(
        "T"
    )
    session.table("T").sort("id").show(2)
    assert capsys.readouterr().out == (
        "-----------------\n"
        '|"ID"  |"NAME"  |\n'
        "-----------------\n"
        "|1     |a       |\n"
        "|2     |NULL    |\n"
        "-----------------\n\n"
    )
    session.table("T").filter(F.col("id") == 3).show(max_width=10)
    assert "|3     |xxxxxxx...  |" in capsys.readouterr().out
    session.create_dataframe(pa.table({"I": pa.array(range(200_000))})).write.save_as_table("BIG")
    big = session.table("BIG").filter(F.col("i") % 2 == 0)
    assert big.count() == 100_000
    frames = list(big.to_pandas_batches())
    assert len(frames) > 1 and all(isinstance(f, pd.DataFrame) for f in frames)
    assert sum(int(f["I"].sum()) for f in frames) == sum(range(0, 200_000, 2))
    assert big.sort("i").limit(3).to_pandas().to_dict("list") == {"I": [0, 2, 4]}


def test_run_batch_over_a_derived_dataframe(embedded_session: Session, embedded_db: str) -> None:
    session = embedded_session
    mv = Registry(session).log_model(
        Doubler(), model_name="DOUBLER", sample_input_data=pd.DataFrame({"X": [1.0]})
    )
    session.create_dataframe(pd.DataFrame({"ID": [1, 2, 3], "X": [1.0, 2.0, 3.0]})).write.save_as_table(
        "FEATURES"
    )
    frame = session.table("FEATURES").filter(F.col("id") >= 2).with_column("X", F.col("x") + 10)
    job = mv.run_batch(
        frame, compute_pool="SYSTEM_COMPUTE_POOL_CPU", output_spec=OutputSpec(stage_location="@DATA/o/")
    )
    assert job.wait(60) == "DONE", job.get_logs()
    out = session.read.parquet("@DATA/o/").sort("ID").to_pandas()
    assert out.to_dict("list") == {"ID": [2, 3], "X": [12.0, 13.0], "Y": [24.0, 26.0]}
