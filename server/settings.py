"""ServerSettings: every knob of the control plane process, read from RUNBATCH_* variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["ServerSettings", "default_home"]


def default_home() -> Path:
    return Path(os.environ.get("RUNBATCH_HOME") or Path.home() / ".runbatch")


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNBATCH_", extra="ignore")

    home: Path = Field(
        default_factory=default_home,
        description="Folder for the embedded database, local stages, the admin token file and caches.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the metadata database; default sqlite:///$RUNBATCH_HOME/runbatch.db.",
    )
    stage_url: str | None = Field(
        default=None,
        description="Storage root for internal stages and model artifacts; default file://$RUNBATCH_HOME/storage.",
    )
    host: str = Field(default="127.0.0.1", description="Interface `runbatch server` listens on.")
    port: int = Field(default=8080, description="Port `runbatch server` listens on.")
    heartbeat_timeout_s: float = Field(
        default=30.0,
        description="A running shard whose last heartbeat is older than this is presumed dead and retried.",
    )
    max_shard_attempts: int = Field(
        default=3, ge=1, description="How many times a shard runs before a crash fails its job."
    )
    maintenance_interval_s: float = Field(
        default=2.0,
        description="How often the reaper looks for dead shards, unfinished finalizations and stale uploads.",
    )
    input_upload_timeout_s: float = Field(
        default=3600.0,
        description="A job whose client never finished uploading its input fails after this long.",
    )
    log_level: str = Field(default="INFO", description="Log level of the server process.")

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'runbatch.db'}"

    def resolved_stage_url(self) -> str:
        return self.stage_url or f"file://{(self.home / 'storage').resolve()}"
