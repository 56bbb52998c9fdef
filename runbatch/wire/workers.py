"""Workers on the wire: registration, heartbeats and what compute pools show."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

__all__ = ["WorkerPublic", "WorkerRegister"]


class WorkerRegister(BaseModel):
    name: str = Field(description="host:pid")
    host: str
    pools: list[str] = Field(description="Compute pools served; ['*'] serves every pool")
    executor: str
    slots: int
    cpus: int
    memory_bytes: int
    gpus: int


class WorkerPublic(WorkerRegister):
    id: uuid.UUID
    started_at: datetime
    heartbeat_at: datetime
    live: bool
