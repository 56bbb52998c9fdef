"""File format options: parsed, checked and normalized in one place.

The same rules serve ``CREATE FILE FORMAT``, a query's ``FILE_FORMAT => 'name'`` and
``COPY INTO @stage ... FILE_FORMAT = (...)``. Only what runbatch can honour is accepted: an option
Snowflake knows but pyarrow cannot honour (or a value of it) is refused with a message saying so,
and an unknown option is refused with the list of supported ones, so a format never silently
reads differently than it says.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from runbatch.errors import InvalidArgumentError, UnsupportedError
from server.sql.tokens import Cursor, Kind

__all__ = ["TYPES", "FileFormat", "RawOptions", "file_format", "read_options"]

TYPES = ("CSV", "JSON", "PARQUET")

RawValue = str | list[str]
RawOptions = dict[str, RawValue]


@dataclass(frozen=True)
class _Option:
    kind: str  # bool, int, char (one character or NONE), text, list (of strings), enum
    default: Any
    choices: tuple[str, ...] = ()  # enum: the values runbatch honours
    refused: tuple[str, ...] = ()  # enum: Snowflake's values runbatch cannot honour
    only: bool | None = None  # bool: the one value runbatch can honour, when restricted
    why: str = ""  # what to say when a value is refused


_COMPRESSION = _Option(
    "enum",
    "AUTO",
    ("AUTO", "GZIP", "BZ2", "ZSTD", "NONE"),
    ("BROTLI", "DEFLATE", "RAW_DEFLATE"),
    why="runbatch reads and writes gzip, bz2 and zstd files",
)
_AUTO_ONLY = _Option(
    "enum", "AUTO", ("AUTO",), why="values are parsed by the SQL casts (::DATE, ::TIMESTAMP)"
)

_CSV: dict[str, _Option] = {
    "COMPRESSION": _COMPRESSION,
    "RECORD_DELIMITER": _Option(
        "text", "\n", ("\n", "\r\n"), why="records end at a newline ('\\n' or '\\r\\n')"
    ),
    "FIELD_DELIMITER": _Option("char", ","),
    "FILE_EXTENSION": _Option("text", None),
    "PARSE_HEADER": _Option("bool", False),
    "SKIP_HEADER": _Option("int", 0),
    "SKIP_BLANK_LINES": _Option("bool", False),
    "DATE_FORMAT": _AUTO_ONLY,
    "TIME_FORMAT": _AUTO_ONLY,
    "TIMESTAMP_FORMAT": _AUTO_ONLY,
    "ESCAPE": _Option("char", None),
    "ESCAPE_UNENCLOSED_FIELD": _Option("char", "\\"),
    "TRIM_SPACE": _Option("bool", False),
    "FIELD_OPTIONALLY_ENCLOSED_BY": _Option("char", None),
    "NULL_IF": _Option("list", ["\\N"]),
    "ERROR_ON_COLUMN_COUNT_MISMATCH": _Option(
        "bool", True, only=True, why="a row with another number of fields is an error"
    ),
    "EMPTY_FIELD_AS_NULL": _Option("bool", True),
    "ENCODING": _Option(
        "enum",
        "UTF8",
        ("UTF8", "UTF-8", "ISO-8859-1", "LATIN1", "WINDOWS1252", "UTF16", "UTF-16"),
        why="supported encodings are UTF8, ISO-8859-1 (LATIN1), WINDOWS1252 and UTF16",
    ),
}
_JSON: dict[str, _Option] = {
    "COMPRESSION": _COMPRESSION,
    "FILE_EXTENSION": _Option("text", None),
    "DATE_FORMAT": _AUTO_ONLY,
    "TIME_FORMAT": _AUTO_ONLY,
    "TIMESTAMP_FORMAT": _AUTO_ONLY,
    "STRIP_OUTER_ARRAY": _Option(
        "bool", False, only=False, why="runbatch reads newline-delimited JSON (one value per line)"
    ),
    "STRIP_NULL_VALUES": _Option("bool", False, only=False, why="null values are kept"),
    "IGNORE_UTF8_ERRORS": _Option("bool", False, only=False, why="invalid UTF-8 is an error"),
}
_PARQUET: dict[str, _Option] = {
    "COMPRESSION": _Option(
        "enum",
        "AUTO",
        ("AUTO", "SNAPPY", "NONE"),
        ("LZO",),
        why="Parquet files are written with snappy or none",
    ),
}
_BY_TYPE = {"CSV": _CSV, "JSON": _JSON, "PARQUET": _PARQUET}

# Reader options of Snowpark's DataFrameReader that are not file format options in Snowflake;
# only the SDK's inline formats (FILE_FORMAT => '( ... )') carry them.
_INLINE_ONLY = {"INFER_SCHEMA": _Option("bool", False)}

# Options Snowflake has for some type, that runbatch does not honour for any.
_NOT_HONOURED = frozenset(
    {
        "MULTI_LINE",
        "BINARY_FORMAT",
        "VALIDATE_UTF8",
        "REPLACE_INVALID_CHARACTERS",
        "SKIP_BYTE_ORDER_MARK",
        "ENABLE_OCTAL",
        "ALLOW_DUPLICATE",
        "BINARY_AS_TEXT",
        "USE_LOGICAL_TYPE",
        "USE_VECTORIZED_SCANNER",
        "SNAPPY_COMPRESSION",
        "PRESERVE_SPACE",
        "STRIP_OUTER_ELEMENT",
        "DISABLE_AUTO_CONVERT",
        "DISABLE_SNOWFLAKE_DATA",
        "ENABLE_SCHEMA_EVOLUTION",
    }
)


@dataclass(frozen=True)
class FileFormat:
    """A TYPE and the options given for it (normalized); ``get`` falls back to Snowflake's defaults."""

    type: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        if name in self.options:
            return self.options[name]
        spec = _BY_TYPE[self.type].get(name) or _INLINE_ONLY.get(name)
        if spec is None:
            raise KeyError(name)
        return list(spec.default) if isinstance(spec.default, list) else spec.default

    def given(self, name: str) -> bool:
        return name in self.options

    def describe(self) -> str:
        """Every option with its value in effect, as JSON (SHOW FILE FORMATS' format_options)."""
        shown: dict[str, Any] = {"TYPE": self.type}
        for name in _BY_TYPE[self.type]:
            value = self.get(name)
            shown[name] = "NONE" if value is None else value
        return json.dumps(shown)


def file_format(raw: Mapping[str, RawValue], *, inline: bool = False) -> FileFormat:
    """Check ``raw`` (``TYPE`` included) and normalize each value; ``inline`` allows the SDK's reader options."""
    options = {key.upper(): value for key, value in raw.items()}
    type_raw = options.pop("TYPE", None)
    if type_raw is None:
        raise InvalidArgumentError(f"SQL compilation error: a file format needs TYPE = {' | '.join(TYPES)}.")
    kind = _single(type_raw, "TYPE").upper()
    if kind not in TYPES:
        if kind in ("AVRO", "ORC", "XML", "ICEBERG"):
            raise UnsupportedError(
                f"File format TYPE = {kind} is not supported by runbatch; use {', '.join(TYPES)}."
            )
        raise InvalidArgumentError(
            f"SQL compilation error: unknown file format TYPE = {kind}; use one of {', '.join(TYPES)}."
        )
    specs = {**_BY_TYPE[kind], **(_INLINE_ONLY if inline else {})}
    unknown = sorted(k for k in options if k not in specs)
    if unknown:
        honoured_elsewhere = [
            k for k in unknown if k in _NOT_HONOURED or any(k in t for t in _BY_TYPE.values())
        ]
        if honoured_elsewhere and len(honoured_elsewhere) == len(unknown):
            raise UnsupportedError(
                f"File format option(s) {', '.join(unknown)} are not supported for TYPE = {kind} in runbatch; "
                f"supported: {', '.join(sorted(specs))}."
            )
        raise InvalidArgumentError(
            f"SQL compilation error: unknown file format option(s) {', '.join(unknown)} for TYPE = {kind}; "
            f"supported: {', '.join(sorted(specs))}."
        )
    normalized = {name: _normalize(kind, name, specs[name], value) for name, value in options.items()}
    fmt = FileFormat(kind, normalized)
    if kind == "CSV" and fmt.get("PARSE_HEADER") and fmt.get("SKIP_HEADER"):
        raise InvalidArgumentError(
            "SQL compilation error: PARSE_HEADER = TRUE cannot be combined with SKIP_HEADER; the header row is "
            "the first line read."
        )
    return fmt


def _single(value: RawValue, name: str) -> str:
    if isinstance(value, list):
        raise InvalidArgumentError(f"SQL compilation error: {name} takes one value, not a list.")
    return value


def _normalize(kind: str, name: str, spec: _Option, value: RawValue) -> Any:
    if spec.kind == "list":
        return [value] if isinstance(value, str) else list(value)
    text = _single(value, name)
    if spec.kind == "bool":
        upper = text.upper()
        if upper not in ("TRUE", "FALSE"):
            raise InvalidArgumentError(f"SQL compilation error: {name} must be TRUE or FALSE, not {text!r}.")
        flag = upper == "TRUE"
        if spec.only is not None and flag is not spec.only:
            raise UnsupportedError(
                f"{name} = {upper} is not supported for TYPE = {kind} in runbatch: {spec.why}."
            )
        return flag
    if spec.kind == "int":
        if not text.isdigit():
            raise InvalidArgumentError(
                f"SQL compilation error: {name} must be a non-negative integer, not {text!r}."
            )
        return int(text)
    if spec.kind == "char":
        if text.upper() == "NONE":
            return None
        if len(text) != 1:
            raise UnsupportedError(
                f"{name} = {text!r} is not supported in runbatch: it must be a single character (or NONE)."
            )
        return text
    if spec.kind == "enum":
        upper = text.upper()
        if upper in spec.choices:
            return upper
        if upper in spec.refused or spec.choices == ("AUTO",):
            raise UnsupportedError(
                f"{name} = {text} is not supported for TYPE = {kind} in runbatch: {spec.why}."
            )
        raise InvalidArgumentError(
            f"SQL compilation error: {name} = {text!r} is not valid for TYPE = {kind}; use one of "
            f"{', '.join(spec.choices)}."
        )
    if spec.choices and text not in spec.choices:
        raise UnsupportedError(
            f"{name} = {text!r} is not supported for TYPE = {kind} in runbatch: {spec.why}."
        )
    return text


def read_options(cur: Cursor, *, stop: tuple[str, ...] = ()) -> RawOptions:
    """``KEY = value`` pairs up to the end (or a keyword in ``stop``); a value may be a ``('a', 'b')`` list."""
    raw: RawOptions = {}
    while cur.peek().kind is Kind.WORD and cur.peek().text.upper() not in stop:
        key = cur.next().text.upper()
        cur.expect_punct("=")
        if cur.accept_punct("("):
            items: list[str] = []
            while not cur.accept_punct(")"):
                cur.accept_punct(",")
                if cur.peek().kind is Kind.PUNCT and cur.peek().text == ")":
                    continue
                items.append(cur.value())
            raw[key] = items
        else:
            raw[key] = cur.value()
        cur.accept_punct(",")
    return raw
