"""Named file formats and queries over CSV, JSON and Parquet stage files: options, $1 references,
METADATA$ columns, and session.read.csv / json / parquet."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.errors import InvalidArgumentError, NotFoundError, UnsupportedError
from runbatch.snowpark import Session
from runbatch.snowpark.functions import col
from runbatch.snowpark.types import DoubleType, LongType, StringType, StructField, StructType

PEOPLE_CSV = 'id|name|note\n1|"Ann|Lee"|\\N\n2||""\n3|bob|  padded  \n'


def _put(session: Session, tmp_path: Path, name: str, content: str | bytes, target: str) -> None:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    session.file.put(str(path), target)


def test_create_show_and_drop_file_formats(session: Session, fresh_db: str) -> None:
    created = session.sql(
        "CREATE FILE FORMAT pipe TYPE = CSV FIELD_DELIMITER = '|' SKIP_HEADER = 1 NULL_IF = ('NA', '') "
        "COMMENT = 'pipes'"
    ).collect()
    assert created[0].status == "File format PIPE successfully created."
    assert session.sql("CREATE FILE FORMAT IF NOT EXISTS pipe TYPE = JSON").collect()[0].status == (
        "PIPE already exists, statement succeeded."
    )
    with pytest.raises(ValueError, match=f"Object '{fresh_db}.PUBLIC.PIPE' already exists"):
        session.sql("CREATE FILE FORMAT pipe TYPE = JSON").collect()
    session.sql("CREATE OR REPLACE FILE FORMAT js TYPE = JSON COMPRESSION = GZIP").collect()
    shown = session.sql("SHOW FILE FORMATS").collect()
    assert [(r["name"], r["type"], r["database_name"], r["schema_name"], r["comment"]) for r in shown] == [
        ("JS", "JSON", fresh_db, "PUBLIC", ""),
        ("PIPE", "CSV", fresh_db, "PUBLIC", "pipes"),
    ]
    options = json.loads(shown[1]["format_options"])
    assert (
        options["FIELD_DELIMITER"],
        options["SKIP_HEADER"],
        options["NULL_IF"],
        options["COMPRESSION"],
    ) == (
        "|",
        1,
        ["NA", ""],
        "AUTO",
    )
    assert [r["name"] for r in session.sql("SHOW FILE FORMATS LIKE 'p%'").collect()] == ["PIPE"]
    assert session.sql("DROP FILE FORMAT js").collect()[0].status == "JS successfully dropped."
    assert session.sql("DROP FILE FORMAT IF EXISTS js").collect()[0].status == (
        "Drop statement executed successfully (JS already dropped)."
    )
    with pytest.raises(
        ValueError, match="unknown file format option.s. COLOR for TYPE = CSV; supported: COMPRESSION"
    ):
        session.sql("CREATE FILE FORMAT bad TYPE = CSV COLOR = 'red'").collect()
    with pytest.raises(UnsupportedError, match="STRIP_OUTER_ARRAY = TRUE is not supported for TYPE = JSON"):
        session.sql("CREATE FILE FORMAT bad TYPE = JSON STRIP_OUTER_ARRAY = TRUE").collect()
    assert [r["name"] for r in session.sql("SHOW FILE FORMATS").collect()] == ["PIPE"]


def test_csv_options_read_exact_values(session: Session, fresh_db: str, tmp_path: Path) -> None:
    _put(session, tmp_path, "people.csv", PEOPLE_CSV, "@DATA/csv/")
    session.sql(
        "CREATE FILE FORMAT pipe TYPE = CSV FIELD_DELIMITER = '|' SKIP_HEADER = 1 "
        "FIELD_OPTIONALLY_ENCLOSED_BY = '\"'"
    ).collect()
    rows = session.sql("SELECT $1, $2, $3, $4 FROM @DATA/csv/ (FILE_FORMAT => 'pipe')").collect()
    # Default NULL_IF ('\\N') and EMPTY_FIELD_AS_NULL: \N and an empty field are NULL, "" is ''.
    assert [tuple(r) for r in rows] == [
        ("1", "Ann|Lee", None, None),
        ("2", None, "", None),
        ("3", "bob", "  padded  ", None),
    ]
    session.sql(
        "CREATE FILE FORMAT trimmed TYPE = CSV FIELD_DELIMITER = '|' SKIP_HEADER = 1 TRIM_SPACE = TRUE "
        "FIELD_OPTIONALLY_ENCLOSED_BY = '\"' NULL_IF = ('bob') EMPTY_FIELD_AS_NULL = FALSE"
    ).collect()
    rows = session.sql(
        f"SELECT t.$1::INT AS id, t.$2 AS name, t.$3 AS note FROM @{fresh_db}.PUBLIC.DATA/csv/people.csv "
        f"(FILE_FORMAT => '{fresh_db}.PUBLIC.TRIMMED') t ORDER BY id DESC"
    ).collect()
    assert [tuple(r) for r in rows] == [(3, None, "padded"), (2, "", ""), (1, "Ann|Lee", "\\N")]
    # Without an enclosing character quotes are data.
    _put(session, tmp_path, "quotes.csv", '1|"quoted"|x\n', "@DATA/quotes/")
    session.sql("CREATE FILE FORMAT raw TYPE = CSV FIELD_DELIMITER = '|'").collect()
    assert tuple(session.sql("SELECT $1, $2, $3 FROM @DATA/quotes/ (FILE_FORMAT => 'raw')").collect()[0]) == (
        "1",
        '"quoted"',
        "x",
    )


def test_csv_header_gzip_pattern_and_metadata_columns(
    session: Session, fresh_db: str, tmp_path: Path
) -> None:
    _put(session, tmp_path, "a.csv", "id,score\n1,0.5\n2,1.5\n", "@DATA/mixed/")
    _put(session, tmp_path, "b.csv.gz", gzip.compress(b"id,score\n3,2.5\n"), "@DATA/mixed/")
    _put(session, tmp_path, "skip.txt", "not,csv,at,all\n", "@DATA/mixed/")
    session.sql("CREATE FILE FORMAT hdr TYPE = CSV PARSE_HEADER = TRUE").collect()
    rows = session.sql(
        "SELECT METADATA$FILENAME AS f, METADATA$FILE_ROW_NUMBER AS n, * FROM @DATA/mixed/ "
        "(FILE_FORMAT => 'hdr', PATTERN => '.*[.]csv([.]gz)?') ORDER BY f, n"
    ).collect()
    assert [tuple(r) for r in rows] == [
        ("mixed/a.csv", 1, "1", "0.5"),
        ("mixed/a.csv", 2, "2", "1.5"),
        ("mixed/b.csv.gz", 1, "3", "2.5"),
    ]
    assert [r.as_dict() for r in rows][0] == {"F": "mixed/a.csv", "N": 1, "id": "1", "score": "0.5"}
    total = session.sql(
        "SELECT SUM($2::DOUBLE) AS s, MAX(METADATA$FILE_LAST_MODIFIED) IS NOT NULL AS m "
        "FROM @DATA/mixed/ (FILE_FORMAT => 'hdr', PATTERN => '.*csv.*')"
    ).collect()
    assert tuple(total[0]) == (4.5, True)
    # A field past the end of the record is NULL, as in Snowflake.
    assert session.sql("SELECT $3 FROM @DATA/mixed/a.csv (FILE_FORMAT => 'hdr')").collect()[0][0] is None


def test_json_values_and_paths(session: Session, fresh_db: str, tmp_path: Path) -> None:
    lines = [{"id": 1, "user": {"name": "ann", "tags": ["a", "b"]}}, {"id": "2", "extra": None}, [1, 2]]
    body = "\n".join(json.dumps(v) for v in lines) + "\n\n"
    _put(session, tmp_path, "events.json.gz", gzip.compress(body.encode()), "@DATA/json/")
    session.sql("CREATE FILE FORMAT js TYPE = JSON").collect()
    rows = session.sql(
        "SELECT $1:id::INT AS id, $1:user.name::STRING AS name, $1:user.tags[1]::STRING AS tag, $1:user AS u, "
        "METADATA$FILE_ROW_NUMBER AS n FROM @DATA/json/ (FILE_FORMAT => 'js') ORDER BY n"
    ).collect()
    assert [tuple(r) for r in rows] == [
        (1, "ann", "b", '{"name":"ann","tags":["a","b"]}', 1),
        (2, None, None, None, 2),
        (None, None, None, None, 3),
    ]
    whole = session.sql("SELECT * FROM @DATA/json/ (FILE_FORMAT => 'js')").collect()
    assert [json.loads(r[0]) for r in whole] == lines
    assert whole[0]._fields == ("$1",)
    with pytest.raises(ValueError, match=r"JSON files have one positional column, \$1"):
        session.sql("SELECT $2 FROM @DATA/json/ (FILE_FORMAT => 'js')").collect()


def test_parquet_object_column_and_named_columns(session: Session, fresh_db: str, tmp_path: Path) -> None:
    pq.write_table(pa.table({"ID": [1, 2], "TEXT": ["x", None]}), tmp_path / "p.parquet")
    session.file.put(str(tmp_path / "p.parquet"), "@DATA/pq/")
    session.sql("CREATE FILE FORMAT pqf TYPE = PARQUET").collect()
    rows = session.sql(
        "SELECT $1 AS obj, $1:ID::INT + 1 AS nxt, $1:TEXT::STRING AS t, METADATA$FILENAME AS f "
        "FROM @DATA/pq/ (FILE_FORMAT => 'pqf') ORDER BY nxt"
    ).collect()
    assert [tuple(r) for r in rows] == [
        ('{"ID":1,"TEXT":"x"}', 2, "x", "pq/p.parquet"),
        ('{"ID":2,"TEXT":null}', 3, None, "pq/p.parquet"),
    ]
    assert [tuple(r) for r in session.sql("SELECT * FROM @DATA/pq/ (FILE_FORMAT => 'pqf')").collect()] == [
        (1, "x"),
        (2, None),
    ]
    with pytest.raises(ValueError, match=r"PARQUET files have one positional column, \$1 \(the whole row"):
        session.sql("SELECT $2 FROM @DATA/pq/ (FILE_FORMAT => 'pqf')").collect()


def test_query_errors_name_the_problem(session: Session, fresh_db: str, tmp_path: Path) -> None:
    _put(session, tmp_path, "a.csv", "1,2\n", "@DATA/in/")
    with pytest.raises(
        NotFoundError, match=f"File format '{fresh_db}.PUBLIC.NOPE' does not exist or not authorized"
    ):
        session.sql("SELECT $1 FROM @DATA/in/ (FILE_FORMAT => 'nope')").collect()
    with pytest.raises(ValueError, match=r"No CSV files found at @.*DATA/none/"):
        session.sql("SELECT $1 FROM @DATA/none/ (FILE_FORMAT => '(TYPE = CSV)')").collect()
    _put(session, tmp_path, "ragged.csv", "1,2\n3,4,5\n", "@DATA/ragged/")
    with pytest.raises(ValueError, match="Expected 2 columns, got 3"):
        session.sql("SELECT $1 FROM @DATA/ragged/ (FILE_FORMAT => '(TYPE = CSV)')").collect()
    # The first file sets the columns; a later file that disagrees fails the statement, naming it by its stage path.
    _put(session, tmp_path, "b.csv", "1,2\n3,4,5\n", "@DATA/in/")
    with pytest.raises(
        ValueError, match=r"'in/b.csv': Invalid: CSV parse error: Row #2: Expected 2 columns, got 3"
    ):
        session.sql("SELECT $1 FROM @DATA/in/ (FILE_FORMAT => '(TYPE = CSV)')").collect()
    with pytest.raises(ValueError, match=r"COPY INTO failed: .*'in/b.csv'.*Expected 2 columns, got 3"):
        session.sql(
            "COPY INTO @DATA/out/ FROM (SELECT $1 FROM @DATA/in/ (FILE_FORMAT => '(TYPE = CSV)'))"
        ).collect()
    with pytest.raises(UnsupportedError, match=r"METADATA\$FILE_CONTENT_KEY is not supported"):
        session.sql("SELECT METADATA$FILE_CONTENT_KEY FROM @DATA/in/").collect()
    # Without a file format the files are read as Parquet; the error names the fix.
    for query in ("SELECT * FROM @DATA/in/", 'SELECT "$1" FROM @DATA/in/'):
        with pytest.raises(
            InvalidArgumentError, match=r"need a file format: FROM @stage/path \(FILE_FORMAT =>"
        ):
            session.sql(query).collect()


def test_dataframe_reader_csv_json_parquet(session: Session, fresh_db: str, tmp_path: Path) -> None:
    _put(session, tmp_path, "people.csv", PEOPLE_CSV, "@DATA/csv/")
    schema = StructType(
        [StructField("id", LongType()), StructField("name", StringType()), StructField("note", StringType())]
    )
    df = (
        session.read.options({"field_delimiter": "|", "skip_header": 1})
        .option("field_optionally_enclosed_by", '"')
        .schema(schema)
        .csv("@DATA/csv/people.csv")
    )
    assert df.columns == ["ID", "NAME", "NOTE"]
    assert df.schema.fields[0] == StructField("ID", LongType())
    assert [tuple(r) for r in df.collect()] == [(1, "Ann|Lee", None), (2, None, ""), (3, "bob", "  padded  ")]
    assert df.filter("ID >= 2").count() == 2
    # Snowpark's aliases (sep, header, quote, nullValue) and INFER_SCHEMA: names from the header, types from the data.
    inferred = (
        session.read.option("INFER_SCHEMA", True)
        .options(sep="|", header=True, quote='"', nullValue=["\\N", "bob"])
        .csv("@DATA/csv/")
    )
    assert [tuple(r) for r in inferred.sort("id").collect()] == [
        (1, "Ann|Lee", None),
        (2, None, ""),
        (3, None, "  padded  "),
    ]
    assert inferred.columns == ['"id"', '"name"', '"note"']
    with pytest.raises(InvalidArgumentError, match=r"No schema specified in DataFrameReader.schema\(\)"):
        session.read.csv("@DATA/csv/")
    session.sql(
        "CREATE FILE FORMAT pipe TYPE = CSV FIELD_DELIMITER = '|' SKIP_HEADER = 1 NULL_IF = ('bob') "
        "FIELD_OPTIONALLY_ENCLOSED_BY = '\"'"
    ).collect()
    named = (
        session.read.with_metadata("METADATA$FILENAME", "METADATA$FILE_ROW_NUMBER")
        .schema(StructType([StructField("id", LongType()), StructField("name", StringType())]))
        .option("format_name", "pipe")
        .csv("@DATA/csv/")
    )
    assert [tuple(r) for r in named.collect()] == [
        ("csv/people.csv", 1, 1, "Ann|Lee"),
        ("csv/people.csv", 2, 2, None),
        ("csv/people.csv", 3, 3, None),
    ]

    _put(
        session,
        tmp_path,
        "a.json",
        '{"fruit": "apple", "n": 1, "t": [5, 6]}\n{"fruit": "pear", "n": 2}\n',
        "@DATA/js/",
    )
    values = session.read.json("@DATA/js/")
    assert values.columns == ['"$1"']
    assert [json.loads(r[0]) for r in values.collect()] == [
        {"fruit": "apple", "n": 1, "t": [5, 6]},
        {"fruit": "pear", "n": 2},
    ]
    # Snowpark's col("$1") and Column[...] (GET): VARIANT values come back as JSON text, as in Snowflake.
    picked = values.select(
        col("$1")["fruit"].alias("fruit"),
        col("$1")["n"].cast("INT").alias("n"),
        col("$1")["t"][1].alias("t1"),
    )
    assert [tuple(r) for r in picked.sort(col("n")).collect()] == [('"apple"', 1, "6"), ('"pear"', 2, None)]
    with pytest.raises(
        InvalidArgumentError, match=r"indexed by a field name \(str\) or an array index \(int\)"
    ):
        col("$1")[1.5]  # type: ignore[index]
    with pytest.raises(TypeError, match="Column is not iterable"):
        list(col("$1"))
    fields = session.read.option("infer_schema", True).json("@DATA/js/a.json")
    assert [r.as_dict() for r in fields.collect()] == [
        {"fruit": "apple", "n": 1, "t": [5, 6]},
        {"fruit": "pear", "n": 2, "t": None},
    ]

    pq.write_table(pa.table({"A": [1.5, 2.5], "B": ["x", "y"]}), tmp_path / "one.parquet")
    session.file.put(str(tmp_path / "one.parquet"), "@DATA/pq/")
    assert [tuple(r) for r in session.read.parquet("@DATA/pq/one.parquet").collect()] == [
        (1.5, "x"),
        (2.5, "y"),
    ]
    assert session.read.parquet("@DATA/pq/").schema.fields[0] == StructField("A", DoubleType())
    objects = session.read.option("infer_schema", False).parquet("@DATA/pq/")
    assert [json.loads(r[0]) for r in objects.collect()] == [{"A": 1.5, "B": "x"}, {"A": 2.5, "B": "y"}]
    with pytest.raises(UnsupportedError, match="The copy option ON_ERROR is not supported by session.read"):
        session.read.option("on_error", "continue").schema(schema).csv("@DATA/csv/")
