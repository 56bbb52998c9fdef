"""Tables: rows in the metadata database, Parquet files under ``tables/<db>/<schema>/<table>/<generation>/``.

Functions flush; the caller owns the transaction and purges replaced files after it commits.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from runbatch.identifiers import qualified
from runbatch.stage.paths import name_key
from server.db.tables import TableRow
from server.resources.service import get_schema

__all__ = ["SAVE_MODES", "TableWrite", "drop_table", "get_table", "list_tables", "plan_write", "record_write"]

SAVE_MODES = ("append", "overwrite", "errorifexists", "ignore")


@dataclass(frozen=True)
class TableWrite:
    """Where an upload goes, decided before its bytes arrive, and what to record once it is stored."""

    database: str
    schema: str
    name: str
    mode: str
    location: str
    exists: bool
    skip: bool  # mode "ignore" on an existing table: the upload is read and discarded

    @property
    def file_key(self) -> str:
        return f"{self.location}/part-{uuid.uuid4().hex}.parquet"


def get_table(session: Session, database: str, schema: str, name: str) -> TableRow:
    sch = get_schema(session, database, schema)
    row = session.scalars(
        select(TableRow).where(TableRow.schema_id == sch.id, TableRow.name == name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Table '{qualified(database, schema, name)}' does not exist or not authorized.")
    return row


def list_tables(session: Session, database: str, schema: str) -> list[TableRow]:
    sch = get_schema(session, database, schema)
    return list(session.scalars(select(TableRow).where(TableRow.schema_id == sch.id).order_by(TableRow.name)))


def _new_location(database: str, schema: str, name: str) -> str:
    # A fresh generation folder per create/overwrite: the old files stay readable until the swap commits.
    return f"tables/{name_key(database)}/{name_key(schema)}/{name_key(name)}/{uuid.uuid4().hex}"


def plan_write(session: Session, database: str, schema: str, name: str, mode: str) -> TableWrite:
    """Check ``mode`` against the table's existence (Snowpark's ``save_as_table`` modes)."""
    mode = mode.lower()
    if mode not in SAVE_MODES:
        raise InvalidArgumentError(f"Unsupported save mode {mode!r}; use one of {', '.join(SAVE_MODES)}.")
    sch = get_schema(session, database, schema)
    row = session.scalars(
        select(TableRow).where(TableRow.schema_id == sch.id, TableRow.name == name)
    ).one_or_none()
    if row is not None and mode == "errorifexists":
        raise AlreadyExistsError(
            f"Table '{qualified(database, schema, name)}' already exists. Use mode 'overwrite' to replace it, "
            "'append' to add rows, or 'ignore' to leave it as it is."
        )
    location = row.location if row is not None and mode == "append" else _new_location(database, schema, name)
    return TableWrite(
        database,
        schema,
        name,
        mode,
        location,
        exists=row is not None,
        skip=row is not None and mode == "ignore",
    )


def record_write(session: Session, plan: TableWrite, *, owner: str, rows: int, size: int) -> str | None:
    """Register the stored file; returns the location whose files the caller purges after commit."""
    sch = get_schema(session, plan.database, plan.schema)
    row = session.scalars(
        select(TableRow).where(TableRow.schema_id == sch.id, TableRow.name == plan.name)
    ).one_or_none()
    if row is None:
        session.add(
            TableRow(
                schema_id=sch.id,
                name=plan.name,
                owner=owner,
                location=plan.location,
                row_count=rows,
                bytes=size,
            )
        )
        session.flush()
        return None
    if plan.mode == "append" and row.location == plan.location:
        row.row_count += rows
        row.bytes += size
        session.flush()
        return None
    replaced = row.location
    row.location, row.row_count, row.bytes = plan.location, rows, size
    session.flush()
    return replaced


def drop_table(
    session: Session, database: str, schema: str, name: str, *, if_exists: bool = False
) -> str | None:
    """Delete the row; returns the location the caller purges after commit (None if there was none)."""
    try:
        row = get_table(session, database, schema, name)
    except NotFoundError:
        if if_exists:
            return None
        raise
    location = row.location
    session.delete(row)
    session.flush()
    return location
