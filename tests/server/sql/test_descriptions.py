from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from server.db.tables import ModelVersionRow
from server.sql.descriptions import TABLE_COLUMNS, function_rows, snowflake_type, table_column_rows


@pytest.mark.parametrize(
    ("arrow", "shown"),
    [
        (pa.string(), "VARCHAR(16777216)"),
        (pa.large_string(), "VARCHAR(16777216)"),
        (pa.binary(), "BINARY(8388608)"),
        (pa.bool_(), "BOOLEAN"),
        (pa.int8(), "NUMBER(38,0)"),
        (pa.int64(), "NUMBER(38,0)"),
        (pa.uint32(), "NUMBER(38,0)"),
        (pa.float32(), "FLOAT"),
        (pa.float64(), "FLOAT"),
        (pa.decimal128(10, 2), "NUMBER(10,2)"),
        (pa.date32(), "DATE"),
        (pa.time64("us"), "TIME(6)"),
        (pa.timestamp("ns"), "TIMESTAMP_NTZ(9)"),
        (pa.timestamp("ms", tz="UTC"), "TIMESTAMP_TZ(3)"),
        (pa.list_(pa.float32()), "ARRAY"),
        (pa.struct([("a", pa.int64())]), "OBJECT"),
        (pa.map_(pa.string(), pa.int64()), "OBJECT"),
        (pa.null(), "VARIANT"),
    ],
)
def test_arrow_types_show_as_snowflake_types(arrow: pa.DataType, shown: str) -> None:
    assert snowflake_type(arrow) == shown


def test_table_columns_follow_the_schema() -> None:
    schema = pa.schema([pa.field("ID", pa.int64(), nullable=False), pa.field("name", pa.string())])
    rows = table_column_rows(schema)
    assert [dict(zip(TABLE_COLUMNS, r, strict=True)) for r in rows] == [
        {
            "name": "ID",
            "type": "NUMBER(38,0)",
            "kind": "COLUMN",
            "null?": "N",
            "default": None,
            "primary key": "N",
            "unique key": "N",
            "check": None,
            "expression": None,
            "comment": None,
            "policy name": None,
            "privacy domain": None,
        },
        {
            "name": "name",
            "type": "VARCHAR(16777216)",
            "kind": "COLUMN",
            "null?": "Y",
            "default": None,
            "primary key": "N",
            "unique key": "N",
            "check": None,
            "expression": None,
            "comment": None,
            "policy name": None,
            "privacy domain": None,
        },
    ]


def test_a_table_function_returns_a_table() -> None:
    created = datetime(2025, 1, 2, tzinfo=UTC)
    spec = {
        "signatures": {
            "predict": {
                "inputs": [{"name": "X", "type": "DOUBLE"}],
                "outputs": [{"name": "Y", "type": "DOUBLE"}],
            }
        },
        "method_options": {"predict": {"function_type": "TABLE_FUNCTION"}},
        "manifest": {
            "methods": [
                {
                    "name": "PREDICT",
                    "type": "TABLE_FUNCTION",
                    "inputs": [{"name": "X", "type": "FLOAT"}],
                    "outputs": [{"name": "Y", "type": "FLOAT"}, {"name": "P", "type": "TEXT"}],
                    "params": [],
                }
            ]
        },
    }
    version = ModelVersionRow(name="V1", spec=spec, created_on=created)
    assert function_rows(version) == [
        {
            "created_on": created,
            "name": "PREDICT",
            "version_name": "V1",
            "min_num_arguments": 1,
            "max_num_arguments": 1,
            "arguments": '[{"name": "X", "type": "FLOAT"}]',
            "return_type": "TABLE (Y FLOAT, P TEXT)",
            "description": "",
            "language": "PYTHON",
            "is_table_function": True,
        }
    ]
