"""Mirror of ``snowflake.snowpark.Column``: an expression compiled to Snowflake SQL text.

A Column is only text plus how to name it: DataFrame operations splice that text into the
query they build, and the control plane translates the whole query (sqlglot, then DuckDB).
Names are resolved as Snowflake's (``col("a")`` is ``"A"``, ``col('"a"')`` is ``"a"``) and
always emitted quoted, so no later step can change their case.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import re
from collections.abc import Iterable
from typing import Any

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import resolve_identifier
from runbatch.snowpark.types import (
    ArrayType,
    BinaryType,
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    MapType,
    ShortType,
    StringType,
    TimestampType,
    VariantType,
)

__all__ = ["CaseExpr", "Column", "quote_name", "sql_literal", "sql_type"]


_POSITIONAL = re.compile(r"\$[1-9][0-9]*")


def quote_name(resolved: str) -> str:
    return '"' + resolved.replace('"', '""') + '"'


def sql_literal(value: Any) -> str:
    """``value`` as a Snowflake literal (typed where the bare text would be read as a string)."""
    if value is None:
        return "NULL"
    if isinstance(value, Column):
        return value._sql
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return f"CAST('{value}' AS DOUBLE)"
        return repr(value)
    if isinstance(value, decimal.Decimal):
        return f"{value}"
    if isinstance(value, str):
        # Snowflake string literals treat the backslash as an escape character too.
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    if isinstance(value, dt.datetime):
        kind = "TIMESTAMP_TZ" if value.tzinfo is not None else "TIMESTAMP_NTZ"
        return f"CAST('{value.isoformat(sep=' ')}' AS {kind})"
    if isinstance(value, dt.date):
        return f"CAST('{value.isoformat()}' AS DATE)"
    raise InvalidArgumentError(f"Cannot use a value of type {type(value).__name__} as a SQL literal.")


_SQL_TYPES: dict[type[DataType], str] = {
    StringType: "VARCHAR",
    BinaryType: "BINARY",
    BooleanType: "BOOLEAN",
    ByteType: "TINYINT",
    ShortType: "SMALLINT",
    IntegerType: "INT",
    LongType: "BIGINT",
    FloatType: "DOUBLE",
    DoubleType: "DOUBLE",
    DateType: "DATE",
    TimestampType: "TIMESTAMP_NTZ",
}


def sql_type(datatype: DataType | str) -> str:
    """The SQL type name of a Snowpark type (a string is taken as SQL already)."""
    if isinstance(datatype, str):
        return datatype
    if isinstance(datatype, DecimalType):
        return f"DECIMAL({datatype.precision}, {datatype.scale})"
    if isinstance(datatype, ArrayType | MapType | VariantType):
        raise InvalidArgumentError(f"Casting to {datatype!r} is not supported; cast to a scalar type.")
    return _SQL_TYPES[type(datatype)]


def _operand(value: Any) -> str:
    return value._sql if isinstance(value, Column) else sql_literal(value)


class Column:
    """An expression; ``_name`` is the resolved output name when the expression is a plain column."""

    def __init__(self, sql: str, name: str | None = None) -> None:
        self._sql = sql
        self._name = name

    @classmethod
    def _of(cls, name: str) -> Column:
        if name == "*":
            return cls("*")
        if _POSITIONAL.fullmatch(name):
            # A stage file's positional column, as Snowpark's col("$1"); the view names it "$1".
            return cls(quote_name(name), name)
        resolved = resolve_identifier(name)
        return cls(quote_name(resolved), resolved)

    def __repr__(self) -> str:
        return f"Column[{self._sql}]"

    def __bool__(self) -> bool:
        raise InvalidArgumentError("A Column has no truth value: combine conditions with &, | and ~.")

    __hash__ = object.__hash__  # __eq__ builds an expression, so hashing stays by identity

    def __getitem__(self, field: str | int) -> Column:
        """A field of an OBJECT or an element of an ARRAY: ``col("v")["a"][0]``, Snowflake's GET."""
        if isinstance(field, bool) or not isinstance(field, str | int):
            raise InvalidArgumentError(
                f"A Column is indexed by a field name (str) or an array index (int), not {type(field).__name__}."
            )
        return Column(f"GET({self._sql}, {sql_literal(field)})")

    def __iter__(self) -> Any:
        # Without this, __getitem__ would make Python iterate a Column with 0, 1, 2, ... forever.
        raise TypeError("Column is not iterable")

    # -- operators --------------------------------------------------------------------------------
    def _binary(self, op: str, other: Any) -> Column:
        return Column(f"({self._sql} {op} {_operand(other)})")

    def _rbinary(self, op: str, other: Any) -> Column:
        return Column(f"({_operand(other)} {op} {self._sql})")

    def __eq__(self, other: Any) -> Column:  # type: ignore[override]
        return self._binary("=", other)

    def __ne__(self, other: Any) -> Column:  # type: ignore[override]
        return self._binary("!=", other)

    def __lt__(self, other: Any) -> Column:
        return self._binary("<", other)

    def __le__(self, other: Any) -> Column:
        return self._binary("<=", other)

    def __gt__(self, other: Any) -> Column:
        return self._binary(">", other)

    def __ge__(self, other: Any) -> Column:
        return self._binary(">=", other)

    def __add__(self, other: Any) -> Column:
        return self._binary("+", other)

    def __radd__(self, other: Any) -> Column:
        return self._rbinary("+", other)

    def __sub__(self, other: Any) -> Column:
        return self._binary("-", other)

    def __rsub__(self, other: Any) -> Column:
        return self._rbinary("-", other)

    def __mul__(self, other: Any) -> Column:
        return self._binary("*", other)

    def __rmul__(self, other: Any) -> Column:
        return self._rbinary("*", other)

    def __truediv__(self, other: Any) -> Column:
        return self._binary("/", other)

    def __rtruediv__(self, other: Any) -> Column:
        return self._rbinary("/", other)

    def __mod__(self, other: Any) -> Column:
        return self._binary("%", other)

    def __rmod__(self, other: Any) -> Column:
        return self._rbinary("%", other)

    def __neg__(self) -> Column:
        return Column(f"(- {self._sql})")

    def __and__(self, other: Any) -> Column:
        return self._binary("AND", other)

    def __rand__(self, other: Any) -> Column:
        return self._rbinary("AND", other)

    def __or__(self, other: Any) -> Column:
        return self._binary("OR", other)

    def __ror__(self, other: Any) -> Column:
        return self._rbinary("OR", other)

    def __invert__(self) -> Column:
        return Column(f"(NOT {self._sql})")

    # -- methods ----------------------------------------------------------------------------------
    def is_null(self) -> Column:
        return Column(f"({self._sql} IS NULL)")

    def is_not_null(self) -> Column:
        return Column(f"({self._sql} IS NOT NULL)")

    isNull = is_null
    isNotNull = is_not_null

    def isin(self, *values: Any) -> Column:
        """``isin(1, 2)`` or ``isin([1, 2])``; an empty list is always false, as in Snowpark."""
        items: Iterable[Any] = (
            values[0] if len(values) == 1 and isinstance(values[0], list | tuple | set) else values
        )
        texts = [_operand(v) for v in items]
        if not texts:
            return Column("FALSE")
        return Column(f"({self._sql} IN ({', '.join(texts)}))")

    in_ = isin

    def between(self, lower: Any, upper: Any) -> Column:
        return Column(f"({self._sql} BETWEEN {_operand(lower)} AND {_operand(upper)})")

    def like(self, pattern: Any) -> Column:
        return self._binary("LIKE", pattern)

    def cast(self, to: DataType | str) -> Column:
        return Column(f"CAST({self._sql} AS {sql_type(to)})", self._name)

    astype = cast

    def alias(self, name: str) -> Column:
        return _Aliased(self, resolve_identifier(name))

    as_ = alias
    name = alias

    # Snowpark sorts ascending with NULLs first and descending with NULLs last unless told.
    def asc(self) -> Column:
        return _Sort(f"{self._sql} ASC NULLS FIRST")

    def asc_nulls_first(self) -> Column:
        return _Sort(f"{self._sql} ASC NULLS FIRST")

    def asc_nulls_last(self) -> Column:
        return _Sort(f"{self._sql} ASC NULLS LAST")

    def desc(self) -> Column:
        return _Sort(f"{self._sql} DESC NULLS LAST")

    def desc_nulls_first(self) -> Column:
        return _Sort(f"{self._sql} DESC NULLS FIRST")

    def desc_nulls_last(self) -> Column:
        return _Sort(f"{self._sql} DESC NULLS LAST")

    # -- compilation ------------------------------------------------------------------------------
    def _select_sql(self) -> str:
        """The text for a select list (``expr AS "NAME"`` where it was aliased)."""
        return self._sql

    def _order_sql(self) -> str:
        return f"{self._sql} ASC NULLS FIRST"


class _Aliased(Column):
    def __init__(self, inner: Column, name: str) -> None:
        super().__init__(inner._sql, name)

    def _select_sql(self) -> str:
        assert self._name is not None
        return f"{self._sql} AS {quote_name(self._name)}"


class _Sort(Column):
    """A sort key: valid in ``sort``/``order_by`` only."""

    def _select_sql(self) -> str:
        raise InvalidArgumentError(f"{self._sql} is a sort order; use it in sort() or order_by().")

    def _order_sql(self) -> str:
        return self._sql


class CaseExpr(Column):
    """``when(cond, value).when(...).otherwise(value)``; without ``otherwise`` the rest are NULL."""

    def __init__(self, branches: list[tuple[str, str]], default: str | None = None) -> None:
        self._branches = branches
        self._default = default
        body = " ".join(f"WHEN {c} THEN {v}" for c, v in branches)
        tail = f" ELSE {default}" if default is not None else ""
        super().__init__(f"(CASE {body}{tail} END)")

    def when(self, condition: Column, value: Any) -> CaseExpr:
        return CaseExpr([*self._branches, (condition._sql, _operand(value))], self._default)

    def otherwise(self, value: Any) -> CaseExpr:
        return CaseExpr(self._branches, _operand(value))

    else_ = otherwise
