from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from migrations import upgrade_to_head
from server.db.engine import make_engine, make_sessionmaker


@pytest.fixture
def db_session(tmp_path: Path) -> Iterator[Session]:
    """A fresh SQLite metadata database migrated to head."""
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    upgrade_to_head(engine)
    with make_sessionmaker(engine)() as session:
        yield session
    engine.dispose()
