"""Rows held by the client as a typed ``VALUES`` query, so DataFrame operations over them run on
the control plane like any other query.

Snowpark inlines small local data the same way (``SELECT ... FROM VALUES (...)``). Every column
is cast to the type of its Arrow column, so the query's result has the types the rows had;
nested and binary columns cannot be written as literals and are refused with a hint.
"""

from __future__ import annotations

import pyarrow as pa

from runbatch.errors import UnsupportedError
from runbatch.snowpark.column import quote_name, sql_literal

__all__ = ["values_query"]


def _column_type(t: pa.DataType) -> str | None:
    if (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_string_view(t)
        or pa.types.is_null(t)
    ):
        return "VARCHAR"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    sizes = {8: "TINYINT", 16: "SMALLINT", 32: "INT", 64: "BIGINT"}
    if pa.types.is_signed_integer(t):
        return sizes[t.bit_width]
    if pa.types.is_unsigned_integer(t):
        return sizes[min(t.bit_width * 2, 64)]
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_decimal(t):
        return f"DECIMAL({t.precision}, {t.scale})"
    if pa.types.is_date(t):
        return "DATE"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP_TZ" if t.tz is not None else "TIMESTAMP_NTZ"
    return None


def values_query(table: pa.Table) -> str:
    """``SELECT CAST(C1 AS <type>) AS "<name>", ... FROM (VALUES (...), ...) AS V(C1, ...)``."""
    if table.num_columns == 0:
        raise UnsupportedError("A DataFrame without columns cannot be queried.")
    types = []
    for field in table.schema:
        sql = _column_type(field.type)
        if sql is None:
            raise UnsupportedError(
                f"Column {quote_name(field.name)} of type {field.type} cannot be sent inline with a query; save the "
                "DataFrame as a table first (df.write.save_as_table(...)) and query session.table(...)."
            )
        types.append(sql)
    slots = [f"C{i + 1}" for i in range(table.num_columns)]
    select = ", ".join(
        f"CAST({slot} AS {sql}) AS {quote_name(name)}"
        for slot, sql, name in zip(slots, types, table.column_names, strict=True)
    )
    if table.num_rows == 0:
        nulls = ", ".join(
            f"CAST(NULL AS {sql}) AS {quote_name(n)}"
            for sql, n in zip(types, table.column_names, strict=True)
        )
        return f"SELECT {nulls} LIMIT 0"
    columns = [c.to_pylist() for c in table.columns]
    rows = ", ".join(
        "(" + ", ".join(sql_literal(column[i]) for column in columns) + ")" for i in range(table.num_rows)
    )
    return f"SELECT {select} FROM (VALUES {rows}) AS V({', '.join(slots)})"
