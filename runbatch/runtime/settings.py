"""RuntimeSettings: what a runtime process is told through its environment."""

from __future__ import annotations

import uuid
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RuntimeSettings"]


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNBATCH_", extra="ignore")

    api_url: str = Field(description="Control plane base URL the runtime reports to.")
    shard_id: uuid.UUID = Field(description="The shard this process works on.")
    shard_token: SecretStr = Field(description="Bearer token valid for this shard attempt only.")
    cache_dir: Path = Field(
        default=Path.home() / ".runbatch" / "cache",
        description="Per-host cache of model versions fetched from remote storage.",
    )
    progress_interval_s: float = Field(
        default=1.0, description="How often progress (and liveness) is reported."
    )
    runtime_log_level: str = Field(
        default="INFO", description="Log level of runtime processes (their output is the job's log)."
    )
    file_fetch_threads: int = Field(
        default=16,
        ge=1,
        description="Files of file columns (column_handling) read at once per shard; 1 reads them one by one.",
    )
    file_prefetch: bool = Field(
        default=True,
        description="Read the files of upcoming batches while the model works (False: only when a batch's turn comes).",
    )
    file_prefetch_rows: int = Field(
        default=1024, ge=1, description="At most this many rows' files fetched ahead of the model."
    )
    file_prefetch_bytes: int = Field(
        default=256 << 20, ge=1, description="At most this many bytes of files held ahead of the model."
    )
