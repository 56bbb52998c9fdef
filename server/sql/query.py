"""Translate a Snowflake SELECT into DuckDB SQL over named sources (stage files and tables).

Pure: nothing here touches the metadata database or storage. ``server.sql.results`` resolves
the sources into Arrow datasets and runs the translated text.

Stage files keep Snowflake's column references: ``$1``, ``$2`` (positional), ``$1:field``
(a path into a semi-structured value) and the ``METADATA$`` columns become columns the
source's relation provides under a reserved prefix (``"__runbatch_virtual_$1"``), output under
their own names; ``Query.virtual`` lists those the query names, so the relation computes only
what is asked for. As in Snowflake, ``SELECT *`` over stage files never includes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.optimizer.normalize_identifiers import normalize_identifiers

from runbatch.errors import InvalidArgumentError, UnsupportedError

__all__ = [
    "FUNCTION_PREFIXES",
    "METADATA_COLUMNS",
    "VIRTUAL_PREFIX",
    "FunctionSource",
    "Query",
    "StageSource",
    "TableSource",
    "translate",
]

VIRTUAL_PREFIX = "__runbatch_virtual_"

# The metadata columns of staged files that runbatch provides (Snowflake's names).
METADATA_COLUMNS = frozenset(
    {
        "METADATA$FILENAME",
        "METADATA$FILE_ROW_NUMBER",
        "METADATA$FILE_LAST_MODIFIED",
        "METADATA$START_SCAN_TIME",
    }
)
# Casting a path into a value to one of these keeps it semi-structured; any other type takes the
# value itself (Snowflake's $1:name::STRING is the text, not its JSON form with quotes).
_SEMI_STRUCTURED = {exp.DType.VARIANT, exp.DType.OBJECT, exp.DType.ARRAY, exp.DType.JSON, exp.DType.STRUCT}
_VARIANT = {exp.DType.VARIANT, exp.DType.OBJECT}


@dataclass(frozen=True)
class StageSource:
    """``@[db.][schema.]stage[/path]`` with its PATTERN and FILE_FORMAT (None: Parquet)."""

    alias: str
    stage: str
    pattern: str | None
    file_format: str | None = None  # a format name, or inline options in parentheses: '(TYPE = CSV ...)'


@dataclass(frozen=True)
class TableSource:
    alias: str
    parts: list[str]  # resolved [db.][schema.]name, as written


@dataclass(frozen=True)
class FunctionSource:
    """``TABLE(<name>(<args>))`` of a table function runbatch answers itself (MODEL_MONITOR_*_METRIC)."""

    alias: str
    name: str  # upper case
    args: list[str]  # each argument as DuckDB SQL, evaluated before the query runs


# Table functions answered by runbatch's own services rather than DuckDB.
FUNCTION_PREFIXES = ("MODEL_MONITOR_",)

Source = StageSource | TableSource | FunctionSource


@dataclass(frozen=True)
class Query:
    sql: str  # DuckDB dialect; every source is referenced by its alias
    sources: list[Source]
    virtual: frozenset[str] = field(default_factory=frozenset)  # "$1", "METADATA$FILENAME", ... named


def translate(sql: str) -> Query:
    """Parse ``sql`` as Snowflake, replace stage and table references by aliases, emit DuckDB."""
    tree = parse_one(sql)
    if not isinstance(tree, exp.Query):
        raise UnsupportedError(
            f"Only SELECT and WITH queries run over data; {tree.key.upper()} is not supported."
        )
    return translate_tree(tree)


def parse_one(sql: str) -> exp.Expr:
    try:
        statements = [s for s in sqlglot.parse(sql, read="snowflake") if s is not None]
    except ParseError as exc:
        raise InvalidArgumentError(f"SQL compilation error: {_first_line(exc)}") from None
    if len(statements) != 1:
        raise InvalidArgumentError(
            f"SQL compilation error: session.sql runs one statement at a time; this text has {len(statements)}."
        )
    return statements[0]


def translate_tree(tree: exp.Query) -> Query:
    if any(True for _ in tree.find_all(exp.Placeholder)):
        raise UnsupportedError("Bind variables are not supported in runbatch queries; inline the values.")
    # Snowflake resolves unquoted identifiers to upper case; do it before DuckDB sees them.
    tree = normalize_identifiers(tree, dialect="snowflake")
    _positional_columns(tree)
    _metadata_columns(tree)
    _json_casts(tree)
    virtual = frozenset(
        c.name[len(VIRTUAL_PREFIX) :] for c in tree.find_all(exp.Column) if c.name.startswith(VIRTUAL_PREFIX)
    )
    if virtual:
        _name_virtual_outputs(tree)
        _stars_without_virtual(tree, virtual)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    sources: list[Source] = []
    for node in list(tree.find_all(exp.TableFromRows)):
        call = node.this
        if isinstance(call, exp.Anonymous) and str(call.this).upper().startswith(FUNCTION_PREFIXES):
            function = FunctionSource(
                f"__runbatch_source_{len(sources)}",
                str(call.this).upper(),
                [arg.sql(dialect="duckdb") for arg in call.expressions],
            )
            sources.append(function)
            replacement = exp.Table(this=exp.to_identifier(function.alias, quoted=True))
            if node.alias:
                replacement.set("alias", exp.TableAlias(this=exp.to_identifier(node.alias, quoted=True)))
            node.replace(replacement)
            ctes.add(function.alias)  # registered under that name: not a table to look up
    for table in list(tree.find_all(exp.Table)):
        if table.arg_key == "format":
            continue  # FILE_FORMAT => name: a file format, not a table to read
        source = _source(table, ctes, len(sources))
        if source is None:
            continue
        sources.append(source)
        alias = table.alias or (table.name if isinstance(source, TableSource) else "")
        replacement = exp.Table(this=exp.to_identifier(source.alias, quoted=True))
        if alias:
            replacement.set("alias", exp.TableAlias(this=exp.to_identifier(alias, quoted=True)))
        table.replace(replacement)
    return Query(tree.sql(dialect="duckdb"), sources, virtual)


def _positional_columns(tree: exp.Expr) -> None:
    """``$1`` and ``t.$1`` become the quoted column ``"$1"`` (DuckDB would read ``$1`` as a parameter)."""
    for param in list(tree.find_all(exp.Parameter)):
        inner = param.this
        if not (isinstance(inner, exp.Literal) and not inner.is_string and str(inner.this).isdigit()):
            raise UnsupportedError(
                f"Session variables ({param.sql(dialect='snowflake')}) are not supported in runbatch queries; "
                "inline the value."
            )
        name = exp.to_identifier(f"{VIRTUAL_PREFIX}${inner.this}", quoted=True)
        parent = param.parent
        if isinstance(parent, exp.Column) and parent.this is param:
            parent.set("this", name)
        else:
            param.replace(exp.Column(this=name))


def _metadata_columns(tree: exp.Expr) -> None:
    for column in tree.find_all(exp.Column):
        ident = column.this
        if not isinstance(ident, exp.Identifier) or not ident.name.upper().startswith("METADATA$"):
            continue
        if ident.name not in METADATA_COLUMNS:
            raise UnsupportedError(
                f"{ident.name} is not supported; staged files have {', '.join(sorted(METADATA_COLUMNS))}."
            )
        column.set("this", exp.to_identifier(VIRTUAL_PREFIX + ident.name, quoted=True))


def _name_virtual_outputs(tree: exp.Expr) -> None:
    """``SELECT $1`` outputs a column named ``$1``, as in Snowflake, not the reserved name."""
    for select in tree.find_all(exp.Select):
        for projection in list(select.expressions):
            if isinstance(projection, exp.Column) and projection.name.startswith(VIRTUAL_PREFIX):
                name = exp.to_identifier(projection.name[len(VIRTUAL_PREFIX) :], quoted=True)
                projection.replace(exp.Alias(this=projection.copy(), alias=name))


def _stars_without_virtual(tree: exp.Expr, virtual: frozenset[str]) -> None:
    """``*`` (and ``alias.*``) over stage files leaves out the positional and metadata columns."""
    for select in tree.find_all(exp.Select):
        staged = _staged_aliases(select)
        if not staged:
            continue
        for projection in select.expressions:
            star = None
            if isinstance(projection, exp.Star):
                star = projection
            elif isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star):
                star = projection.this if projection.table in staged else None
            if star is not None:
                star.set(
                    "except_",
                    [exp.column(exp.to_identifier(VIRTUAL_PREFIX + n, quoted=True)) for n in sorted(virtual)],
                )


def _staged_aliases(select: exp.Select) -> set[str]:
    """The names (alias, or '' without one) of the stage references a SELECT reads directly."""
    names = set()
    for item in [select.args.get("from_"), *(select.args.get("joins") or [])]:
        table = item.this if item is not None else None
        if (
            isinstance(table, exp.Table)
            and isinstance(table.this, exp.Var | exp.Literal)
            and str(table.this.this).startswith("@")
        ):
            names.add(table.alias)
    return names


def _json_casts(tree: exp.Expr) -> None:
    for cast in list(tree.find_all(exp.Cast)):
        extract = cast.this
        to = cast.args.get("to")
        if not isinstance(to, exp.DataType):
            continue
        if to.this in _VARIANT:
            # DuckDB's own VARIANT does not travel as Arrow the client reads; JSON is Snowflake's
            # VARIANT as the connector shows it ('abc'::VARIANT is the JSON text "abc").
            cast.replace(exp.Anonymous(this="to_json", expressions=[extract.copy()]))
        elif isinstance(extract, exp.JSONExtract) and to.this not in _SEMI_STRUCTURED:
            cast.set("this", exp.JSONExtractScalar(this=extract.this, expression=extract.expression))


def _source(table: exp.Table, ctes: set[str], index: int) -> Source | None:
    alias = f"__runbatch_source_{index}"
    this = table.this
    if isinstance(this, exp.Var | exp.Literal) and str(this.this).startswith("@"):
        pattern = table.args.get("pattern")
        fmt = table.args.get("format")
        file_format = None
        if isinstance(fmt, exp.Literal):
            file_format = fmt.name
        elif isinstance(fmt, exp.Table):
            file_format = ".".join(p.sql(dialect="snowflake") for p in fmt.parts)
        return StageSource(alias, str(this.this), pattern.name if pattern is not None else None, file_format)
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
