"""Named file formats: rows in the metadata database, one per schema and name.

Functions flush; the caller owns the transaction.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from runbatch.identifiers import complete_name, parse_qualified_name, qualified
from server.db.tables import FileFormatRow
from server.file_formats.options import FileFormat, RawValue, file_format
from server.resources.service import get_schema

__all__ = [
    "create_file_format",
    "drop_file_format",
    "get_file_format",
    "list_file_formats",
    "resolve_file_format",
    "row_format",
]


def row_format(row: FileFormatRow) -> FileFormat:
    return FileFormat(row.format_type, dict(row.options))


def get_file_format(session: Session, database: str, schema: str, name: str) -> FileFormatRow:
    sch = get_schema(session, database, schema)
    row = session.scalars(
        select(FileFormatRow).where(FileFormatRow.schema_id == sch.id, FileFormatRow.name == name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(
            f"File format '{qualified(database, schema, name)}' does not exist or not authorized."
        )
    return row


def list_file_formats(session: Session, database: str, schema: str) -> list[FileFormatRow]:
    sch = get_schema(session, database, schema)
    return list(
        session.scalars(
            select(FileFormatRow).where(FileFormatRow.schema_id == sch.id).order_by(FileFormatRow.name)
        )
    )


def create_file_format(
    session: Session,
    database: str,
    schema: str,
    name: str,
    raw: Mapping[str, RawValue],
    *,
    owner: str,
    comment: str | None = None,
    if_not_exists: bool = False,
    or_replace: bool = False,
) -> tuple[FileFormatRow, bool]:
    """Create the format after checking its options; returns the row and whether it was created."""
    fmt = file_format(raw)
    sch = get_schema(session, database, schema)
    existing = session.scalars(
        select(FileFormatRow).where(FileFormatRow.schema_id == sch.id, FileFormatRow.name == name)
    ).one_or_none()
    if existing is not None:
        if if_not_exists:
            return existing, False
        if not or_replace:
            raise AlreadyExistsError(
                f"Object '{qualified(database, schema, name)}' already exists. Use CREATE OR REPLACE FILE FORMAT "
                "to replace it."
            )
        session.delete(existing)
        session.flush()
    row = FileFormatRow(
        schema_id=sch.id,
        name=name,
        format_type=fmt.type,
        options=dict(fmt.options),
        comment=comment,
        owner=owner,
    )
    session.add(row)
    session.flush()
    return row, True


def drop_file_format(
    session: Session, database: str, schema: str, name: str, *, if_exists: bool = False
) -> bool:
    try:
        row = get_file_format(session, database, schema, name)
    except NotFoundError:
        if if_exists:
            return False
        raise
    session.delete(row)
    session.flush()
    return True


def resolve_file_format(
    session: Session, name: str, *, database: str | None, schema: str | None
) -> FileFormat:
    """``FILE_FORMAT => '[db.][schema.]name'``, resolved against the current database and schema."""
    parts = parse_qualified_name(name)
    db, sch, fmt_name = complete_name(parts, database, schema)
    if db is None or sch is None:
        raise InvalidArgumentError(
            f"Cannot resolve the file format {qualified(*parts)}: there is no current "
            f"{'database' if db is None else 'schema'}. Qualify it (DB.SCHEMA.FORMAT) or run USE SCHEMA first."
        )
    return row_format(get_file_format(session, db, sch, fmt_name))
