"""Translate a Snowflake SELECT into DuckDB SQL over named sources (stage files and tables).

Pure: nothing here touches the metadata database or storage. ``server.sql.results`` resolves
the sources into Arrow datasets and runs the translated text.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from runbatch.errors import InvalidArgumentError, UnsupportedError

__all__ = ["Query", "StageSource", "TableSource", "translate"]


@dataclass(frozen=True)
class StageSource:
    """``@[db.][schema.]stage[/path]`` with its PATTERN; the files are read as Parquet."""

    alias: str
    stage: str
    pattern: str | None


@dataclass(frozen=True)
class TableSource:
    alias: str
    parts: list[str]  # resolved [db.][schema.]name, as written


Source = StageSource | TableSource


@dataclass(frozen=True)
class Query:
    sql: str  # DuckDB dialect; every source is referenced by its alias
    sources: list[Source]


def translate(sql: str) -> Query:
    """Parse ``sql`` as Snowflake, replace stage and table references by aliases, emit DuckDB."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="snowflake") if s is not None]
    except ParseError as exc:
        raise InvalidArgumentError(f"SQL compilation error: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise InvalidArgumentError(
            f"SQL compilation error: session.sql runs one statement at a time; this text has {len(statements)}."
        )
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise UnsupportedError(
            f"Only SELECT and WITH queries run over data; {tree.key.upper()} is not supported."
        )
    if any(True for _ in tree.find_all(exp.Parameter, exp.Placeholder)):
        raise UnsupportedError(
            "Positional column references ($1) and bind variables are not supported in runbatch queries; "
            "name the columns (SELECT col FROM @stage/path) and inline the values."
        )
    # Snowflake resolves unquoted identifiers to upper case; do it before DuckDB sees them.
    tree = normalize_identifiers(tree, dialect="snowflake")
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    sources: list[Source] = []
    for table in list(tree.find_all(exp.Table)):
        source = _source(table, ctes, len(sources))
        if source is None:
            continue
        sources.append(source)
        alias = table.alias or (table.name if isinstance(source, TableSource) else "")
        replacement = exp.Table(this=exp.to_identifier(source.alias, quoted=True))
        if alias:
            replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        table.replace(replacement)
    return Query(tree.sql(dialect="duckdb"), sources)


def _source(table: exp.Table, ctes: set[str], index: int) -> Source | None:
    alias = f"__runbatch_source_{index}"
    this = table.this
    if isinstance(this, exp.Var | exp.Literal) and str(this.this).startswith("@"):
        pattern = table.args.get("pattern")
        return StageSource(alias, str(this.this), pattern.name if pattern is not None else None)
    if isinstance(this, exp.Identifier):
        parts = [p.name for p in table.parts]
        if len(parts) == 1 and parts[0] in ctes:
            return None
        if table.args.get("when") is not None or table.args.get("changes") is not None:
            raise UnsupportedError("Time travel (AT | BEFORE | CHANGES) is not supported on runbatch tables.")
        return TableSource(alias, parts)
    raise UnsupportedError(
        f"SQL compilation error: the source {table.sql(dialect='snowflake')!r} is not supported; select from a "
        "table (db.schema.table) or from stage files (@stage/path)."
    )


def _first_line(exc: ParseError) -> str:
    errors = exc.errors
    if errors:
        first = errors[0]
        return f"{first.get('description')} at line {first.get('line')}, column {first.get('col')}."
    return str(exc).splitlines()[0]
