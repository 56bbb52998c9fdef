"""ServerSettings: every knob of the control plane process, read from RUNBATCH_* variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from runbatch.log_format import LogFormat
from runbatch.stage.storage import StorageConfig

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
        description=(
            "A job whose input never arrived (a client that stopped uploading, or an input query cut off by a "
            "server restart) fails after this long."
        ),
    )
    log_level: str = Field(default="INFO", description="Log level of the server process.")
    log_format: LogFormat = Field(
        default="text",
        description="Log lines as 'text' or 'json' (one object per line with timestamp, level, logger, "
        "message, and job/shard ids where a line is about one).",
    )
    s3_endpoint_url: str | None = Field(
        default=None, description="Endpoint of S3-compatible storage when RUNBATCH_STAGE_URL is s3://..."
    )
    s3_access_key: str | None = Field(default=None, description="Access key id for RUNBATCH_STAGE_URL on S3.")
    s3_secret_key: SecretStr | None = Field(
        default=None, description="Secret access key for RUNBATCH_STAGE_URL."
    )
    s3_region: str = Field(default="us-east-1", description="Region of RUNBATCH_STAGE_URL on S3.")
    broker_url: str | None = Field(
        default=None,
        description="Celery broker (redis://...). Set: shards go to workers on any host through per-pool queues; "
        "unset: the server runs shards itself with in-process workers.",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="An admin token to accept, fixed up front (at least 32 characters) so that workers and "
        "tools can be configured before the server first starts; default: one is minted into $RUNBATCH_HOME/token.",
    )
    admin_password: SecretStr | None = Field(
        default=None,
        description="Password of the built-in `admin` user for `POST /api/v1/login` (the dashboard); unset: admin "
        "signs in with tokens only. The cluster (Postgres) refuses to start when this or RUNBATCH_ADMIN_TOKEN is "
        "a known default or placeholder; generate one with "
        "python -c 'import secrets; print(secrets.token_urlsafe(32))'.",
    )
    login_token_ttl_s: float = Field(
        default=12 * 3600.0, gt=0, description="Lifetime of the token that `POST /api/v1/login` returns."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts external stage credentials at rest; default a random key kept in "
        "$RUNBATCH_HOME/secret.key. Every server replica must use the same key.",
    )
    worker_timeout_s: float = Field(
        default=30.0, description="A worker whose last heartbeat is older than this no longer counts as live."
    )
    registry_host: str | None = Field(
        default=None,
        description="host:port of the cluster's OCI registry (scripts/registry), as `docker login` and the "
        "workers' Docker engines reach it; image repository URLs start with it. Unset: no image repositories.",
    )
    registry_service: str = Field(
        default="runbatch-registry",
        description="The registry's auth.token.service; registry tokens are issued for this audience only.",
    )
    redispatch_after_s: float = Field(
        default=60.0,
        description="A shard still waiting this long after its dispatch is sent again (a lost broker message).",
    )

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'runbatch.db'}"

    def resolved_stage_url(self) -> str:
        return self.stage_url or f"file://{(self.home / 'storage').resolve()}"

    def storage_config(self) -> StorageConfig:
        """The storage root of internal stages and model artifacts."""
        return StorageConfig(
            url=self.resolved_stage_url(),
            endpoint_url=self.s3_endpoint_url,
            region=self.s3_region,
            access_key=self.s3_access_key,
            secret_key=self.s3_secret_key,
        )
