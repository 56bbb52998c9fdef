"""One migration tree: a single head, up and down with rows, and no drift from the tables."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text

from migrations import alembic_config, upgrade_to_head
from server.db.engine import make_engine
from server.db.tables import Base


def test_single_head() -> None:
    assert len(ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()) == 1


def test_upgrade_downgrade_upgrade_with_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    upgrade_to_head(engine)
    with engine.begin() as conn:
        pools = conn.execute(text("SELECT name FROM compute_pools ORDER BY name")).scalars().all()
        assert pools == ["SYSTEM_COMPUTE_POOL_CPU", "SYSTEM_COMPUTE_POOL_GPU"]
        conn.execute(
            text("INSERT INTO databases (name, owner, created_on) VALUES ('X', 'me', CURRENT_TIMESTAMP)")
        )
    cfg = alembic_config(url)
    command.downgrade(cfg, "base")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM sqlite_master WHERE name = 'jobs'")).scalar() == 0
    upgrade_to_head(engine)
    engine.dispose()


def test_tables_match_migrations(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'd.db'}")
    upgrade_to_head(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    assert diff == []
    engine.dispose()
