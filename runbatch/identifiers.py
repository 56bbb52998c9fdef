"""Snowflake identifier rules: unquoted names resolve to upper case, quoted names keep their case.

A *resolved* identifier is the stored form (``my_db`` -> ``MY_DB``, ``"My Db"`` -> ``My Db``).
Everything below the SDK works on resolved names; only user input is parsed here.
"""

from __future__ import annotations

import re

from runbatch.errors import InvalidArgumentError

_UNQUOTED = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_UNQUOTED_RESOLVED = re.compile(r"[A-Z_][A-Z0-9_$]*")

__all__ = [
    "complete_name",
    "format_identifier",
    "parse_qualified_name",
    "qualified",
    "resolve_identifier",
    "split_identifiers",
]


def split_identifiers(text: str) -> list[str]:
    """Split ``a."b.c".d`` on the dots that are outside quotes, keeping each raw part."""
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == '"':
            if quoted and i + 1 < len(text) and text[i + 1] == '"':
                current.append('""')
                i += 2
                continue
            quoted = not quoted
            current.append(ch)
        elif ch == "." and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
        i += 1
    if quoted:
        raise InvalidArgumentError(f"The identifier {text!r} has an unterminated double quote.")
    parts.append("".join(current))
    return parts


def resolve_identifier(raw: str) -> str:
    """Resolve one identifier as Snowflake does: ``abc`` -> ``ABC``, ``"abc"`` -> ``abc``."""
    name = raw.strip()
    if len(name) >= 2 and name.startswith('"') and name.endswith('"'):
        inner = name[1:-1]
        if not inner or re.search(r'(?<!")"(?!")', inner.replace('""', "")):
            raise InvalidArgumentError(f"{raw!r} is not a valid quoted identifier.")
        return inner.replace('""', '"')
    if not _UNQUOTED.fullmatch(name):
        raise InvalidArgumentError(
            f"{raw!r} is not a valid identifier: unquoted names start with a letter or underscore and "
            'contain only letters, digits, _ and $. Put other names in double quotes, e.g. "my-name".'
        )
    return name.upper()


def format_identifier(resolved: str) -> str:
    """The shortest SQL text that resolves back to ``resolved``."""
    if _UNQUOTED_RESOLVED.fullmatch(resolved):
        return resolved
    return '"' + resolved.replace('"', '""') + '"'


def parse_qualified_name(text: str, *, max_parts: int = 3) -> list[str]:
    """Resolve ``[db.][schema.]name`` into its resolved parts (1 to ``max_parts`` of them)."""
    raw_parts = split_identifiers(text.strip())
    if not 1 <= len(raw_parts) <= max_parts or any(not p.strip() for p in raw_parts):
        raise InvalidArgumentError(
            f"{text!r} cannot be parsed as a name of the form "
            + ("[database.][schema.]name" if max_parts == 3 else "[database.]name")
            + "."
        )
    return [resolve_identifier(p) for p in raw_parts]


def qualified(*resolved_parts: str) -> str:
    """Display form of a fully qualified name, e.g. ``ML.PUBLIC."my model"``."""
    return ".".join(format_identifier(p) for p in resolved_parts)


def complete_name(
    parts: list[str], database: str | None, schema: str | None
) -> tuple[str | None, str | None, str]:
    """Resolved ``[db.][schema.]name`` parts with the missing database and schema filled in."""
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2:
        return database, parts[0], parts[1]
    return database, schema, parts[-1]
