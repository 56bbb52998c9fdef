"""COPY INTO @stage: query results unloaded as Parquet, CSV and JSON files on a stage (names, sizes,
options, read back), and the Snowpark writer methods that compile to it."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from runbatch.errors import OutputExistsError, UnsupportedError
from runbatch.snowpark import Session

ROWS = [[1, "ann", 0.5, None], [2, 'say "hi", ok', None, "x"], [3, "", 2.25, "y"]]


def _people(session: Session) -> None:
    session.create_dataframe(ROWS, schema=["ID", "NAME", "SCORE", "TAG"]).write.mode(
        "overwrite"
    ).save_as_table("PEOPLE")


def _listing(session: Session, path: str) -> list[tuple[str, int]]:
    return [(r["name"], r["size"]) for r in session.sql(f"LIST {path}").collect()]


def _download(session: Session, path: str, tmp_path: Path) -> dict[str, bytes]:
    target = tmp_path / "got"
    session.file.get(path, str(target))
    return {p.name: p.read_bytes() for p in sorted(target.rglob("*")) if p.is_file()}


def test_copy_into_parquet_round_trip(session: Session, fresh_db: str, tmp_path: Path) -> None:
    _people(session)
    result = session.sql(
        "COPY INTO @DATA/out/ FROM (SELECT * FROM people ORDER BY id) FILE_FORMAT = (TYPE = PARQUET) HEADER = TRUE"
    ).collect()
    assert result[0]._fields == ("rows_unloaded", "input_bytes", "output_bytes")
    files = _listing(session, "@DATA/out/")
    assert [name for name, _ in files] == ["data/out/data_0_0_0.snappy.parquet"]
    assert (
        result[0].rows_unloaded == 3 and result[0].output_bytes == files[0][1] and result[0].input_bytes > 0
    )
    back = session.sql("SELECT * FROM @DATA/out/ ORDER BY id").collect()
    assert [list(r) for r in back] == ROWS
    assert pq.read_table(
        pa.BufferReader(_download(session, "@DATA/out/", tmp_path)["data_0_0_0.snappy.parquet"])
    ).column_names == [
        "ID",
        "NAME",
        "SCORE",
        "TAG",
    ]
    with pytest.raises(
        OutputExistsError, match=r"Files already existing at the unload destination: @.*DATA/out/\. "
    ):
        session.sql("COPY INTO @DATA/out/ FROM people FILE_FORMAT = (TYPE = PARQUET)").collect()
    # Without HEADER = TRUE Parquet columns are named by position, as Snowflake writes them.
    again = session.sql(
        "COPY INTO @DATA/out/ FROM (SELECT id, name FROM people WHERE id = 2) FILE_FORMAT = (TYPE = PARQUET "
        "COMPRESSION = NONE) OVERWRITE = TRUE"
    ).collect()
    assert again[0].rows_unloaded == 1
    assert [n for n, _ in _listing(session, "@DATA/out/")] == [
        "data/out/data_0_0_0.parquet",
        "data/out/data_0_0_0.snappy.parquet",
    ]
    renamed = session.sql("SELECT * FROM @DATA/out/ (PATTERN => '.*0[.]parquet')").collect()
    assert [r.as_dict() for r in renamed] == [{"_COL_0": 2, "_COL_1": 'say "hi", ok'}]


def test_copy_into_csv_options_and_exact_bytes(session: Session, fresh_db: str, tmp_path: Path) -> None:
    _people(session)
    plain = session.sql(
        "COPY INTO @DATA/csv/ FROM (SELECT * FROM people ORDER BY id) HEADER = TRUE"
    ).collect()
    assert plain[0].rows_unloaded == 3
    got = _download(session, "@DATA/csv/", tmp_path)
    assert list(got) == ["data_0_0_0.csv.gz"]
    # NULL is an empty field; the delimiter inside an unenclosed field is escaped (ESCAPE_UNENCLOSED_FIELD).
    text = gzip.decompress(got["data_0_0_0.csv.gz"]).decode()
    assert text == 'ID,NAME,SCORE,TAG\n1,ann,0.5,\n2,say "hi"\\, ok,,x\n3,,2.25,y\n'
    assert plain[0].input_bytes == len(text.encode())

    quoted = session.sql(
        "COPY INTO @DATA/q/people FROM (SELECT * FROM people ORDER BY id) FILE_FORMAT = (TYPE = CSV "
        "FIELD_DELIMITER = '|' FIELD_OPTIONALLY_ENCLOSED_BY = '\"' NULL_IF = ('NULL') COMPRESSION = NONE)"
    ).collect()
    assert [n for n, _ in _listing(session, "@DATA/q/")] == ["data/q/people_0_0_0.csv"]
    assert quoted[0].output_bytes == quoted[0].input_bytes
    raw = _download(session, "@DATA/q/", tmp_path / "q")["people_0_0_0.csv"].decode()
    assert raw == '1|"ann"|0.5|NULL\n2|"say ""hi"", ok"|NULL|"x"\n3|""|2.25|"y"\n'
    session.sql(
        "CREATE FILE FORMAT qf TYPE = CSV FIELD_DELIMITER = '|' FIELD_OPTIONALLY_ENCLOSED_BY = '\"' NULL_IF = ('NULL')"
    ).collect()
    back = session.sql(
        "SELECT $1::INT AS id, $2 AS name, $3::DOUBLE AS score, $4 AS tag FROM @DATA/q/ (FILE_FORMAT => 'qf') "
        "ORDER BY id"
    ).collect()
    assert [list(r) for r in back] == ROWS


def test_copy_into_json_single_max_file_size_and_detailed_output(
    session: Session, fresh_db: str, tmp_path: Path
) -> None:
    _people(session)
    session.sql(
        "COPY INTO @DATA/js/ FROM (SELECT * FROM people ORDER BY id) FILE_FORMAT = (TYPE = JSON)"
    ).collect()
    lines = (
        gzip.decompress(_download(session, "@DATA/js/", tmp_path)["data_0_0_0.json.gz"]).decode().splitlines()
    )
    assert [json.loads(line) for line in lines] == [
        dict(zip(["ID", "NAME", "SCORE", "TAG"], r, strict=True)) for r in ROWS
    ]
    names = session.sql(
        "SELECT $1:NAME::STRING AS name FROM @DATA/js/ (FILE_FORMAT => '(TYPE = JSON)') ORDER BY $1:ID::INT"
    ).collect()
    assert [r.NAME for r in names] == ["ann", 'say "hi", ok', ""]

    single = session.sql(
        "COPY INTO @DATA/one/people.csv FROM (SELECT id, name FROM people ORDER BY id) SINGLE = TRUE HEADER = TRUE"
    ).collect()
    assert single[0].rows_unloaded == 3
    assert _download(session, "@DATA/one/", tmp_path / "one") == {
        "people.csv": b'ID,NAME\n1,ann\n2,say "hi"\\, ok\n3,\n'
    }

    session.create_dataframe(pa.table({"I": pa.array(range(300_000), pa.int64())})).write.save_as_table("BIG")
    detailed = session.sql(
        "COPY INTO @DATA/big/ FROM big FILE_FORMAT = (TYPE = CSV COMPRESSION = NONE) MAX_FILE_SIZE = 100000 "
        "DETAILED_OUTPUT = TRUE"
    ).collect()
    assert [r.FILE_NAME for r in detailed] == [f"data_0_0_{i}.csv" for i in range(len(detailed))]
    assert len(detailed) > 1 and sum(r.ROW_COUNT for r in detailed) == 300_000
    assert [(f"data/big/{r.FILE_NAME}", r.FILE_SIZE) for r in detailed] == _listing(session, "@DATA/big/")
    total = session.sql(
        "SELECT COUNT(*) AS n, SUM($1::BIGINT) AS s FROM @DATA/big/ (FILE_FORMAT => '(TYPE = CSV)')"
    )
    assert tuple(total.collect()[0]) == (300_000, sum(range(300_000)))


def test_copy_into_from_stage_files_and_named_formats(
    session: Session, fresh_db: str, tmp_path: Path
) -> None:
    (tmp_path / "in.csv").write_text("id;city\n1;Oslo\n2;Lima\n")
    session.file.put(str(tmp_path / "in.csv"), "@DATA/raw/")
    session.sql("CREATE FILE FORMAT semi TYPE = CSV FIELD_DELIMITER = ';' SKIP_HEADER = 1").collect()
    session.sql("CREATE FILE FORMAT out_pq TYPE = PARQUET").collect()
    converted = session.sql(
        "COPY INTO @DATA/conv/ FROM (SELECT $1::INT AS id, $2 AS city, METADATA$FILENAME AS src "
        "FROM @DATA/raw/ (FILE_FORMAT => 'semi')) FILE_FORMAT = (FORMAT_NAME = 'out_pq') HEADER = TRUE"
    ).collect()
    assert converted[0].rows_unloaded == 2
    assert [r.as_dict() for r in session.read.parquet("@DATA/conv/").sort("id").collect()] == [
        {"ID": 1, "CITY": "Oslo", "SRC": "raw/in.csv"},
        {"ID": 2, "CITY": "Lima", "SRC": "raw/in.csv"},
    ]


def test_copy_into_errors(session: Session, fresh_db: str) -> None:
    _people(session)
    with pytest.raises(
        UnsupportedError, match=r"COPY INTO <table> \(loading staged files into a table\) is not"
    ):
        session.sql("COPY INTO people FROM @DATA/x/").collect()
    with pytest.raises(
        UnsupportedError, match="CREDENTIALS, STORAGE_INTEGRATION and ENCRYPTION are not supported"
    ):
        session.sql("COPY INTO @DATA/e/ FROM people ENCRYPTION = (TYPE = 'SNOWFLAKE_SSE')").collect()
    with pytest.raises(
        ValueError, match="unknown or unsupported COPY INTO <location> option VALIDATION_MODE"
    ):
        session.sql("COPY INTO @DATA/e/ FROM people VALIDATION_MODE = RETURN_ROWS").collect()
    with pytest.raises(UnsupportedError, match="COMPRESSION = ZSTD is not supported for unloading"):
        session.sql("COPY INTO @DATA/e/ FROM people FILE_FORMAT = (TYPE = CSV COMPRESSION = ZSTD)").collect()
    with pytest.raises(UnsupportedError, match="PARTITION BY is not supported"):
        session.sql("COPY INTO @DATA/e/ FROM people PARTITION BY ('a')").collect()
    with pytest.raises(ValueError, match="unknown file format option.s. SIZE for TYPE = PARQUET"):
        session.sql("COPY INTO @DATA/e/ FROM people FILE_FORMAT = (TYPE = PARQUET SIZE = 1)").collect()
    with pytest.raises(ValueError, match="File format '.*NOPE' does not exist"):
        session.sql("COPY INTO @DATA/e/ FROM people FILE_FORMAT = (FORMAT_NAME = 'nope')").collect()
    with pytest.raises(ValueError, match="Table '.*MISSING' does not exist"):
        session.sql("COPY INTO @DATA/e/ FROM missing").collect()
    assert session.sql("LIST @DATA/e/").collect() == []


def test_dataframe_writer_unloads_files(session: Session, fresh_db: str, tmp_path: Path) -> None:
    df = session.create_dataframe(
        [["John", "Berry"], ["Rick", "Berry"], ["Anthony", "Davis"]], schema=["FIRST_NAME", "LAST_NAME"]
    )
    result = df.write.copy_into_location(
        "@DATA/w/names.parquet", file_format_type="parquet", header=True, overwrite=True, single=True
    )
    assert result[0].rows_unloaded == 3
    table = pq.read_table(
        pa.BufferReader(_download(session, "@DATA/w/names.parquet", tmp_path)["names.parquet"])
    )
    assert table.to_pydict() == {
        "FIRST_NAME": ["John", "Rick", "Anthony"],
        "LAST_NAME": ["Berry", "Berry", "Davis"],
    }
    assert [r.FIRST_NAME for r in session.read.parquet("@DATA/w/names.parquet").collect()] == [
        "John",
        "Rick",
        "Anthony",
    ]

    assert df.write.parquet("@DATA/w/p/")[0].rows_unloaded == 3
    assert [tuple(r) for r in session.read.parquet("@DATA/w/p/").collect()][0] == ("John", "Berry")
    assert session.read.parquet("@DATA/w/p/").columns == ["_COL_0", "_COL_1"]

    df.write.csv("@DATA/w/c/", header=True, format_type_options={"sep": "|", "compression": "none"})
    assert _download(session, "@DATA/w/c/", tmp_path / "c") == {
        "data_0_0_0.csv": b"FIRST_NAME|LAST_NAME\nJohn|Berry\nRick|Berry\nAnthony|Davis\n"
    }
    with pytest.raises(OutputExistsError, match="Files already existing"):
        df.write.csv("@DATA/w/c/")
    df.filter("FIRST_NAME = 'Rick'").write.option("compression", "none").csv("@DATA/w/c/", overwrite=True)
    assert _download(session, "@DATA/w/c/", tmp_path / "c2") == {"data_0_0_0.csv": b"Rick,Berry\n"}

    df.write.json("@DATA/w/j/names.json", single=True)
    assert _download(session, "@DATA/w/j/", tmp_path / "j")["names.json"].decode().splitlines()[0] == (
        '{"FIRST_NAME":"John","LAST_NAME":"Berry"}'
    )
    saved = df.write.format("csv").options({"compression": "gzip"}).save("@DATA/w/g/", header=True)
    assert saved[0].rows_unloaded == 3 and [n for n, _ in _listing(session, "@DATA/w/g/")] == [
        "data/w/g/data_0_0_0.csv.gz"
    ]
    with pytest.raises(UnsupportedError, match="partition_by"):
        df.write.parquet("@DATA/w/x/", partition_by="FIRST_NAME")
