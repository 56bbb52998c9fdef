"""One migration tree, on SQLite and on Postgres: a single head, up and down with rows, no drift."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text

from migrations import alembic_config, is_at_head, upgrade_to_head
from server.db.engine import make_engine
from server.db.tables import Base
from tests.services import PostgresDatabase


@pytest.fixture(params=["sqlite", "postgres"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty metadata database of each backend."""
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
        yield made
        made.dispose()
        return
    database = PostgresDatabase()
    made = make_engine(database.url)
    try:
        yield made
    finally:
        made.dispose()
        database.drop()


def _config(engine: Engine) -> Config:
    return alembic_config(engine.url.render_as_string(hide_password=False))


def test_single_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1


def test_upgrade_downgrade_upgrade_with_rows(engine: Engine) -> None:
    upgrade_to_head(engine)
    assert is_at_head(engine)
    with engine.begin() as conn:
        pools = conn.execute(text("SELECT name FROM compute_pools ORDER BY name")).scalars().all()
        assert pools == ["SYSTEM_COMPUTE_POOL_CPU", "SYSTEM_COMPUTE_POOL_GPU"]
        conn.execute(
            text("INSERT INTO databases (name, owner, created_on) VALUES ('X', 'me', CURRENT_TIMESTAMP)")
        )
    cfg = _config(engine)
    command.downgrade(cfg, "-1")  # the newest step down and up again, keeping the rows
    assert not is_at_head(engine)
    upgrade_to_head(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM databases")).scalars().all() == ["X"]
    command.downgrade(cfg, "base")
    assert "jobs" not in inspect(engine).get_table_names()
    upgrade_to_head(engine)
    assert is_at_head(engine)


def test_tables_match_migrations(engine: Engine) -> None:
    upgrade_to_head(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
