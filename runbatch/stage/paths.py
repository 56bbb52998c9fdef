"""Parsing and normalizing stage paths; the one place that decides a path stays inside its stage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from runbatch.errors import InvalidArgumentError, StagePathError
from runbatch.identifiers import parse_qualified_name, qualified, split_identifiers

__all__ = [
    "StagePath",
    "compile_pattern",
    "name_key",
    "normalize_key",
    "parse_stage_path",
    "pattern_matches",
    "stage_root_key",
]

_FORBIDDEN_CHARS = re.compile(r"[\x00-\x1f\\]")


def name_key(name: str) -> str:
    """A resolved identifier as one storage path segment (quoted names may hold '/' or be '..')."""
    return quote(name, safe="").replace(".", "%2E")


def stage_root_key(database: str, schema: str, stage: str) -> str:
    """Where an internal stage's files live in the storage root."""
    return f"stages/{name_key(database)}/{name_key(schema)}/{name_key(stage)}"


def normalize_key(path: str, *, what: str = "stage path") -> str:
    """Normalize a relative path (``a//b/./c`` -> ``a/b/c``) and refuse anything that could escape.

    ``..`` segments are refused rather than resolved: a path that names its parent is a
    mistake or an attack, and resolving it silently would hide both.
    """
    if _FORBIDDEN_CHARS.search(path):
        raise StagePathError(
            f"The {what} {path!r} contains a backslash or a control character; use '/' between folders."
        )
    segments = [s for s in path.split("/") if s not in ("", ".")]
    if ".." in segments:
        raise StagePathError(
            f"The {what} {path!r} contains '..', which would leave its stage. "
            "Name files relative to the stage root, e.g. @MY_STAGE/folder/file.parquet."
        )
    return "/".join(segments)


@dataclass(frozen=True)
class StagePath:
    """A resolved location on a named stage. ``path`` is normalized and relative ('' is the root)."""

    database: str
    schema: str
    stage: str
    path: str = ""

    @property
    def stage_name(self) -> str:
        return qualified(self.database, self.schema, self.stage)

    def child(self, relative: str) -> StagePath:
        rel = normalize_key(relative)
        return StagePath(self.database, self.schema, self.stage, f"{self.path}/{rel}".strip("/"))

    def __str__(self) -> str:
        return f"@{self.stage_name}/{self.path}" if self.path else f"@{self.stage_name}/"

    @property
    def key(self) -> str:
        """The storage key of this path on an internal stage."""
        root = stage_root_key(self.database, self.schema, self.stage)
        return f"{root}/{self.path}" if self.path else root

    def as_dir(self) -> str:
        """The text form with a trailing slash, as Snowflake prints output locations."""
        return f"@{self.stage_name}/{self.path}/" if self.path else f"@{self.stage_name}/"

    def contains(self, other: StagePath) -> bool:
        if (self.database, self.schema, self.stage) != (other.database, other.schema, other.stage):
            return False
        return not self.path or other.path == self.path or other.path.startswith(self.path + "/")


def parse_stage_path(text: str, *, database: str | None = None, schema: str | None = None) -> StagePath:
    """Parse ``@[db.][schema.]stage[/path]``; missing parts come from the current database and schema."""
    raw = text.strip()
    if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
        raw = raw[1:-1]
    if not raw.startswith("@"):
        raise StagePathError(
            f"{text!r} is not a stage path: stage paths start with '@', e.g. @MY_STAGE/folder/."
        )
    body = raw[1:]
    if body.startswith("~") or body.startswith("%"):
        raise StagePathError(
            f"{text!r} names a user or table stage, which runbatch does not have. Create a named stage "
            "with CREATE STAGE and use @DB.SCHEMA.STAGE/path."
        )
    # The stage name ends at the first '/' outside double quotes.
    quoted = False
    cut = len(body)
    for i, ch in enumerate(body):
        if ch == '"':
            quoted = not quoted
        elif ch == "/" and not quoted:
            cut = i
            break
    name_text, rest = body[:cut], body[cut + 1 :]
    if not name_text or not split_identifiers(name_text)[-1].strip():
        raise StagePathError(f"{text!r} does not name a stage.")
    try:
        parts = parse_qualified_name(name_text)
    except ValueError as exc:
        raise StagePathError(f"{text!r} does not name a stage: {exc}") from None
    if len(parts) == 3:
        db, sch, stage = parts
    elif len(parts) == 2:
        if database is None:
            raise StagePathError(f"Cannot resolve {text!r}: there is no current database. {_QUALIFY_HINT}")
        db, (sch, stage) = database, parts
    else:
        if database is None or schema is None:
            missing = "database" if database is None else "schema"
            raise StagePathError(f"Cannot resolve {text!r}: there is no current {missing}. {_QUALIFY_HINT}")
        db, sch, stage = database, schema, parts[0]
    return StagePath(db, sch, stage, normalize_key(rest))


_QUALIFY_HINT = "Use a fully qualified name such as @DB.SCHEMA.STAGE/path, or call session.use_database(...)."


def compile_pattern(pattern: str | None) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise InvalidArgumentError(f"PATTERN {pattern!r} is not a valid regular expression: {exc}.") from None


def pattern_matches(regex: re.Pattern[str], *, list_name: str, stage_relative: str) -> bool:
    """The one meaning of a PATTERN, for LIST, DataFrame reads and run_batch input alike.

    A file matches when the regex matches all of the name LIST shows (``stage/folder/f.parquet``,
    or the URL on an external stage) or all of its path from the stage root (``folder/f.parquet``).
    Storage keys never take part: they are an implementation detail.
    """
    return regex.fullmatch(list_name) is not None or regex.fullmatch(stage_relative) is not None
