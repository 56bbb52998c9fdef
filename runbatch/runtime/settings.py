"""RuntimeSettings: what a runtime process is told through its environment."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["RuntimeSettings", "UrlFetchSettings"]


class UrlFetchSettings(BaseSettings):
    """Which http(s) URLs a runtime fetches when a row names one (a vision chat's ``image_url``).

    Runtimes run on the workers' network (host networking), where a URL could reach the cloud's
    metadata service (169.254.169.254), the control plane or anything else inside: by default only
    hosts that resolve to public addresses are fetched. The ``RUNBATCH_FILE_*`` names make the
    worker pass them on from its own environment to the runtimes of batch jobs.
    """

    model_config = SettingsConfigDict(env_prefix="RUNBATCH_", extra="ignore")

    file_fetch_urls: Literal["public", "all", "none"] = Field(
        default="public",
        description=(
            "http(s) URLs in rows: public (only hosts resolving to public addresses, not loopback, private, "
            "link-local or other special ones), all (any host), or none (refuse every URL)."
        ),
    )
    file_fetch_urls_allow: str = Field(
        default="",
        description=(
            "Comma-separated host names and networks (CIDR, e.g. 10.1.0.0/16) fetched although they are not "
            "public, with file_fetch_urls=public."
        ),
    )


class RuntimeSettings(UrlFetchSettings):
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
