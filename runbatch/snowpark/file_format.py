"""File format options as the Snowpark reader and writer take them, rendered as SQL.

``session.read.option(...)`` and ``df.write.csv(..., format_type_options=...)`` accept Snowflake's
option names and the PySpark-style aliases Snowpark maps onto them (``sep``, ``header``,
``nullValue``, ...). The control plane checks the options themselves; here they only become
``KEY = value`` text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbatch.errors import InvalidArgumentError
from runbatch.snowpark.column import sql_literal

__all__ = ["READER_ALIASES", "WRITER_ALIASES", "canonical", "options_sql", "value_sql"]

# Snowpark's DataFrameReader aliases (READER_OPTIONS_ALIAS_MAP).
READER_ALIASES = {
    "DELIMITER": "FIELD_DELIMITER",
    "HEADER": "PARSE_HEADER",
    "PATHGLOBFILTER": "PATTERN",
    "FILENAMEPATTERN": "PATTERN",
    "INFERSCHEMA": "INFER_SCHEMA",
    "SEP": "FIELD_DELIMITER",
    "LINESEP": "RECORD_DELIMITER",
    "QUOTE": "FIELD_OPTIONALLY_ENCLOSED_BY",
    "NULLVALUE": "NULL_IF",
    "DATEFORMAT": "DATE_FORMAT",
    "TIMESTAMPFORMAT": "TIMESTAMP_FORMAT",
}
# Snowpark's DataFrameWriter aliases (WRITER_OPTIONS_ALIAS_MAP).
WRITER_ALIASES = {
    "SEP": "FIELD_DELIMITER",
    "LINESEP": "RECORD_DELIMITER",
    "QUOTE": "FIELD_OPTIONALLY_ENCLOSED_BY",
    "NULLVALUE": "NULL_IF",
    "DATEFORMAT": "DATE_FORMAT",
    "TIMESTAMPFORMAT": "TIMESTAMP_FORMAT",
}


def canonical(key: str, aliases: Mapping[str, str]) -> str:
    upper = key.upper()
    return aliases.get(upper, upper)


def value_sql(value: Any) -> str:
    """An option value as SQL: TRUE/FALSE, a number, a string literal, NONE, or a list ``('a', 'b')``."""
    if value is None:
        return "NONE"
    if isinstance(value, bool | int | float | str):
        return sql_literal(value)
    if isinstance(value, list | tuple):
        return "(" + ", ".join(sql_literal(str(v)) for v in value) + ")"
    raise InvalidArgumentError(f"Cannot use {value!r} as a file format option value.")


def options_sql(options: Mapping[str, Any]) -> str:
    """``KEY = value`` pairs, space separated, in the order given."""
    return " ".join(f"{key} = {value_sql(value)}" for key, value in options.items())
