"""Mirror of ``snowflake.snowpark.Row``: a tuple whose fields are also reachable by name."""

from __future__ import annotations

from typing import Any

__all__ = ["Row"]


class Row(tuple):  # type: ignore[type-arg]
    _fields: tuple[str, ...]

    def __new__(cls, *values: Any, **named: Any) -> Row:
        if values and named:
            raise ValueError("Either positional or keyword values, not both.")
        if named:
            row = super().__new__(cls, tuple(named.values()))
            row._fields = tuple(named)
        else:
            row = super().__new__(cls, values)
            row._fields = ()
        return row

    @classmethod
    def _with_fields(cls, fields: list[str], values: list[Any]) -> Row:
        row = super().__new__(cls, tuple(values))
        row._fields = tuple(fields)
        return row

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            try:
                return super().__getitem__(self._fields.index(item))
            except ValueError:
                raise KeyError(item) from None
        return super().__getitem__(item)

    def __getattr__(self, name: str) -> Any:
        fields = self.__dict__.get("_fields", ())
        if name in fields:
            return tuple.__getitem__(self, fields.index(name))
        raise AttributeError(f"Row object has no attribute {name}")

    def as_dict(self, recursive: bool = False) -> dict[str, Any]:
        return dict(zip(self._fields, self, strict=True))

    asDict = as_dict

    def __repr__(self) -> str:
        if not self._fields:
            return "Row(" + ", ".join(repr(v) for v in self) + ")"
        return "Row(" + ", ".join(f"{k}={v!r}" for k, v in zip(self._fields, self, strict=True)) + ")"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Row._with_fields, (list(self._fields), list(self)))
