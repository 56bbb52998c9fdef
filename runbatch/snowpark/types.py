"""Mirror of ``snowflake.snowpark.types``: the column types a DataFrame schema is made of."""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

from runbatch.identifiers import format_identifier, resolve_identifier

__all__ = [
    "ArrayType",
    "BinaryType",
    "BooleanType",
    "ByteType",
    "DataType",
    "DateType",
    "DecimalType",
    "DoubleType",
    "FloatType",
    "IntegerType",
    "LongType",
    "MapType",
    "ShortType",
    "StringType",
    "StructField",
    "StructType",
    "TimestampType",
    "VariantType",
    "arrow_to_type",
    "type_to_arrow",
]


class DataType:
    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and self.__dict__ == other.__dict__

    def __hash__(self) -> int:
        return hash(type(self).__name__)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class StringType(DataType):
    pass


class BinaryType(DataType):
    pass


class BooleanType(DataType):
    pass


class ByteType(DataType):
    pass


class ShortType(DataType):
    pass


class IntegerType(DataType):
    pass


class LongType(DataType):
    pass


class FloatType(DataType):
    pass


class DoubleType(DataType):
    pass


class DateType(DataType):
    pass


class TimestampType(DataType):
    pass


class VariantType(DataType):
    pass


class DecimalType(DataType):
    def __init__(self, precision: int = 38, scale: int = 0) -> None:
        self.precision, self.scale = precision, scale

    def __repr__(self) -> str:
        return f"DecimalType({self.precision}, {self.scale})"


class ArrayType(DataType):
    def __init__(self, element_type: DataType | None = None) -> None:
        self.element_type = element_type or StringType()

    def __repr__(self) -> str:
        return f"ArrayType({self.element_type!r})"


class MapType(DataType):
    def __init__(self, key_type: DataType | None = None, value_type: DataType | None = None) -> None:
        self.key_type, self.value_type = key_type or StringType(), value_type or StringType()

    def __repr__(self) -> str:
        return f"MapType({self.key_type!r}, {self.value_type!r})"


@dataclass
class StructField:
    """A named column. Unquoted names resolve to upper case, as Snowpark's do."""

    column_identifier: str
    datatype: DataType
    nullable: bool = True

    def __post_init__(self) -> None:
        self.column_identifier = (
            resolve_identifier(self.column_identifier)
            if not _is_resolved(self.column_identifier)
            else self.column_identifier
        )

    @property
    def name(self) -> str:
        return format_identifier(self.column_identifier)

    def __repr__(self) -> str:
        return f"StructField({self.name!r}, {self.datatype!r}, nullable={self.nullable})"


def _is_resolved(name: str) -> bool:
    return not (name.startswith('"') and name.endswith('"')) and name == name.upper()


@dataclass
class StructType(DataType):
    fields: list[StructField] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [f.column_identifier for f in self.fields]

    def add(self, name: str, datatype: DataType, nullable: bool = True) -> StructType:
        self.fields.append(StructField(name, datatype, nullable))
        return self

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.fields)

    def __repr__(self) -> str:
        return f"StructType([{', '.join(repr(f) for f in self.fields)}])"

    def __hash__(self) -> int:
        return hash(tuple(self.names))


_TO_ARROW: dict[type[DataType], pa.DataType] = {
    StringType: pa.string(),
    BinaryType: pa.binary(),
    BooleanType: pa.bool_(),
    ByteType: pa.int8(),
    ShortType: pa.int16(),
    IntegerType: pa.int32(),
    LongType: pa.int64(),
    FloatType: pa.float32(),
    DoubleType: pa.float64(),
    DateType: pa.date32(),
    TimestampType: pa.timestamp("us"),
    VariantType: pa.string(),
}


def type_to_arrow(t: DataType) -> pa.DataType:
    if isinstance(t, ArrayType):
        return pa.list_(type_to_arrow(t.element_type))
    if isinstance(t, DecimalType):
        return pa.decimal128(t.precision, t.scale)
    if isinstance(t, MapType | StructType):
        return pa.string()
    return _TO_ARROW[type(t)]


def arrow_to_type(t: pa.DataType) -> DataType:
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return StringType()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return BinaryType()
    if pa.types.is_boolean(t):
        return BooleanType()
    if pa.types.is_int8(t):
        return ByteType()
    if pa.types.is_int16(t):
        return ShortType()
    if pa.types.is_int32(t):
        return IntegerType()
    if pa.types.is_integer(t):
        return LongType()
    if pa.types.is_float32(t):
        return FloatType()
    if pa.types.is_floating(t):
        return DoubleType()
    if pa.types.is_decimal(t):
        return DecimalType(t.precision, t.scale)
    if pa.types.is_date(t):
        return DateType()
    if pa.types.is_timestamp(t):
        return TimestampType()
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        return ArrayType(arrow_to_type(t.value_type))
    if pa.types.is_struct(t) or pa.types.is_map(t):
        return MapType(StringType(), VariantType())
    return VariantType()
