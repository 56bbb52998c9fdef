"""The objects one control plane process shares across requests and background work."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from sqlalchemy import Engine
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker as SessionFactory

from runbatch.stage.storage import Storage
from server.metrics import ServerMetrics
from server.secrets import SecretBox
from server.settings import ServerSettings

__all__ = ["ControlPlane", "Dispatcher", "NullDispatcher"]


class Dispatcher(Protocol):
    """Hands shards to workers of a compute pool. Called after the shards' rows are committed."""

    def dispatch(self, pool: str, shard_ids: list[UUID]) -> None: ...

    def pending_messages(self, pool: str) -> int | None:
        """Messages waiting in the pool's queue, or None when the dispatcher cannot lose them."""
        ...


class NullDispatcher:
    """For a control plane without workers attached: shards wait in the database until one asks."""

    def dispatch(self, pool: str, shard_ids: list[UUID]) -> None:
        return None

    def pending_messages(self, pool: str) -> int | None:
        return None


@dataclass
class ControlPlane:
    settings: ServerSettings
    engine: Engine
    sessionmaker: SessionFactory[Session]
    # For work that only reads: on SQLite it never queues behind a writer.
    read_sessionmaker: SessionFactory[Session]
    storage: Storage
    secrets: SecretBox
    dispatcher: Dispatcher = field(default_factory=NullDispatcher)
    background: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=4, thread_name_prefix="runbatch-bg")
    )
    # Jobs this process is finalizing now, so the reaper never resumes one that is only slow.
    finalizing: set[UUID] = field(default_factory=set)
    finalizing_lock: threading.Lock = field(default_factory=threading.Lock)
    # Where this process serves HTTP, once it does: Python DAG tasks run as its subprocesses and call back.
    url: str | None = None
    # Its own Prometheus registry: several control planes in one process never share series.
    metrics: ServerMetrics = field(default_factory=ServerMetrics)
