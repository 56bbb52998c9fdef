"""SQLite sessions: writers queue for the write lock, readers never wait for a writer."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import func, select

from migrations import upgrade_to_head
from server.db.engine import make_engine, make_sessionmaker
from server.db.tables import DatabaseRow


def test_a_read_session_does_not_wait_for_an_open_write(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'meta.db'}")
    upgrade_to_head(engine)
    writes, reads = make_sessionmaker(engine), make_sessionmaker(engine, read_only=True)
    counted: list[int] = []

    def read() -> None:
        with reads() as session:
            counted.append(session.scalar(select(func.count()).select_from(DatabaseRow)) or 0)

    with writes() as writer:
        writer.add(DatabaseRow(name="SLOW", owner="t"))
        writer.flush()  # holds the write lock (BEGIN IMMEDIATE) until commit
        reader = threading.Thread(target=read)
        reader.start()
        reader.join(timeout=10)  # a BEGIN IMMEDIATE reader would wait for the 30 s busy timeout
        assert not reader.is_alive()
        assert counted == [0]  # it sees the last committed state
        writer.commit()
    read()
    assert counted == [0, 1]
    engine.dispose()
