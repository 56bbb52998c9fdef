"""Alembic environment: runs on a connection handed in by ``upgrade_to_head`` or on the URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from server.db.tables import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def _render_item(type_: str, obj: object, _autogen_context: object) -> str | bool:
    # Migrations must not import application types: a later change to them would rewrite history.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _run(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=True,  # SQLite cannot ALTER most things; batch mode copies the table
        compare_type=True,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        render_item=_render_item,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
    else:
        # NullPool: the connection closes with the block instead of idling in a pool.
        engine = create_engine(config.get_main_option("sqlalchemy.url") or "", poolclass=NullPool)
        with engine.connect() as conn:
            _run(conn)
            conn.commit()
