"""Rows of DESCRIBE TABLE | STAGE and SHOW FUNCTIONS IN MODEL, in Snowflake's column sets."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from server.db.tables import ModelVersionRow, StageRow
from server.registry import service as registry

__all__ = [
    "FUNCTION_COLUMNS",
    "STAGE_PROPERTY_COLUMNS",
    "TABLE_COLUMNS",
    "function_rows",
    "snowflake_type",
    "stage_property_rows",
    "table_column_rows",
]

TABLE_COLUMNS = [
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

STAGE_PROPERTY_COLUMNS = [
    "parent_property",
    "property",
    "property_type",
    "property_value",
    "property_default",
]

FUNCTION_COLUMNS = [
    "created_on",
    "name",
    "version_name",
    "min_num_arguments",
    "max_num_arguments",
    "arguments",
    "return_type",
    "description",
    "language",
    "is_table_function",
]

_TIMESTAMP_SCALE = {"s": 0, "ms": 3, "us": 6, "ns": 9}


def snowflake_type(t: pa.DataType) -> str:
    """The type DESCRIBE TABLE shows for a column Snowflake loaded from Parquet of Arrow type ``t``."""
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "VARCHAR(16777216)"
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return "BINARY(8388608)"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    if pa.types.is_integer(t):
        return "NUMBER(38,0)"
    if pa.types.is_floating(t):
        return "FLOAT"
    if pa.types.is_decimal(t):
        return f"NUMBER({t.precision},{t.scale})"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_time(t):
        return f"TIME({_TIMESTAMP_SCALE[t.unit]})"
    if pa.types.is_timestamp(t):
        kind = "TIMESTAMP_TZ" if t.tz else "TIMESTAMP_NTZ"
        return f"{kind}({_TIMESTAMP_SCALE[t.unit]})"
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return "ARRAY"
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return "OBJECT"
    return "VARIANT"


def table_column_rows(schema: pa.Schema) -> list[list[Any]]:
    return [
        [f.name, snowflake_type(f.type), "COLUMN", "Y" if f.nullable else "N", None, "N", "N"]
        + [None] * (len(TABLE_COLUMNS) - 7)
        for f in schema
    ]


def stage_property_rows(stage: StageRow) -> list[list[Any]]:
    """The location properties of a stage; credentials are never shown, only whether there are some."""
    url = json.dumps([stage.url]) if stage.url else ""
    return [
        ["STAGE_LOCATION", "URL", "String", url, ""],
        ["STAGE_LOCATION", "ENDPOINT", "String", stage.endpoint or "", ""],
        ["STAGE_LOCATION", "REGION", "String", stage.region or "", ""],
        [
            "STAGE_CREDENTIALS",
            "HAS_CREDENTIALS",
            "Boolean",
            "true" if stage.credentials else "false",
            "false",
        ],
        ["DIRECTORY", "ENABLE", "Boolean", "false", "false"],
    ]


def function_rows(version: ModelVersionRow) -> list[dict[str, Any]]:
    """One row per function of a version; argument and return types are the MANIFEST.yml's SQL types."""
    methods = {m.get("name"): m for m in (version.spec.get("manifest") or {}).get("methods") or []}
    rows: list[dict[str, Any]] = []
    for fn in registry.functions_of(version.spec):
        method = methods.get(fn.name) or {}
        inputs = [{"name": a["name"], "type": a["type"]} for a in method.get("inputs") or []]
        params = [{"name": a["name"], "type": a["type"]} for a in method.get("params") or []]
        table = fn.target_method_function_type == "TABLE_FUNCTION"
        outputs = ", ".join(f"{o['name']} {o['type']}" for o in method.get("outputs") or [] if "name" in o)
        rows.append(
            {
                "created_on": version.created_on,
                "name": fn.name,
                "version_name": version.name,
                "min_num_arguments": len(inputs),
                "max_num_arguments": len(inputs) + len(params),
                "arguments": json.dumps(inputs + params),
                # Snowflake's client tells table functions by "TABLE" in return_type.
                "return_type": f"TABLE ({outputs})" if table else "OBJECT",
                "description": "",
                "language": "PYTHON",
                "is_table_function": table,
            }
        )
    return rows
