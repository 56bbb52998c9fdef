"""Mirror of ``snowflake.snowpark.functions``: column constructors, CASE and common functions.

Every function takes a Column or a column name (``sum("amount")``), as Snowpark's do; the
result is SQL text run on the control plane.
"""

from __future__ import annotations

from typing import Any

from runbatch.snowpark.column import CaseExpr, Column, sql_literal

__all__ = [
    "avg",
    "coalesce",
    "col",
    "column",
    "concat",
    "count",
    "count_distinct",
    "countDistinct",
    "lit",
    "lower",
    "max",
    "mean",
    "min",
    "sum",
    "upper",
    "when",
]

ColumnOrName = Column | str


def col(name: str) -> Column:
    """The column ``name`` (unquoted names resolve to upper case; ``"*"`` is every column)."""
    return Column._of(name)


column = col


def lit(value: Any) -> Column:
    return value if isinstance(value, Column) else Column(sql_literal(value))


def _c(value: ColumnOrName) -> Column:
    return value if isinstance(value, Column) else Column._of(value)


def _call(name: str, *args: ColumnOrName) -> Column:
    return Column(f"{name}({', '.join(_c(a)._sql for a in args)})")


def when(condition: Column, value: Any) -> CaseExpr:
    return CaseExpr([]).when(condition, value)


def sum(e: ColumnOrName) -> Column:  # noqa: A001 - Snowpark's name
    return _call("SUM", e)


def avg(e: ColumnOrName) -> Column:
    return _call("AVG", e)


mean = avg


def min(e: ColumnOrName) -> Column:  # noqa: A001 - Snowpark's name
    return _call("MIN", e)


def max(e: ColumnOrName) -> Column:  # noqa: A001 - Snowpark's name
    return _call("MAX", e)


def count(e: ColumnOrName) -> Column:
    """``count("*")`` counts rows; a column counts its non-NULL values."""
    return Column("COUNT(*)") if isinstance(e, str) and e == "*" else _call("COUNT", e)


def count_distinct(*cols: ColumnOrName) -> Column:
    return Column(f"COUNT(DISTINCT {', '.join(_c(c)._sql for c in cols)})")


countDistinct = count_distinct


def upper(e: ColumnOrName) -> Column:
    return _call("UPPER", e)


def lower(e: ColumnOrName) -> Column:
    return _call("LOWER", e)


def concat(*cols: ColumnOrName) -> Column:
    return _call("CONCAT", *cols)


def coalesce(*cols: ColumnOrName) -> Column:
    return _call("COALESCE", *cols)
