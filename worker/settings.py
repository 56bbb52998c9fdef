"""WorkerSettings: every knob of a worker process (or of the in-process worker of the embedded default)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from runbatch.log_format import LogFormat

__all__ = ["WorkerSettings"]


class WorkerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RUNBATCH_", extra="ignore")

    executor: str = Field(
        default="process",
        description="How runtimes start: 'process' (a subprocess per shard) or 'docker' (a container per shard).",
    )
    docker_cpu_image: str | None = Field(
        default=None,
        description="CPU runtime image of the docker executor; default: built from the source checkout "
        "(`runbatch images build cpu`) on first use.",
    )
    docker_gpu_image: str | None = Field(
        default=None, description="GPU runtime image of the docker executor; default: built on first use."
    )
    docker_base_image: str | None = Field(
        default=None,
        description="Base of runtime images built here; default python:3.11-slim, or a Debian bootstrap where no "
        "registry is reachable.",
    )
    runtime_repository: str | None = Field(
        default=None,
        description="Image repository URL (<registry host>/<db>/<schema>/<repository>, the repository_url of SHOW "
        "IMAGE REPOSITORIES) the docker executor pulls runtime images from when they are not on this host's "
        "engine, instead of building them; `runbatch images push` puts them there. The worker's token needs "
        "READ on the repository. Default (unset or empty): build runtime images here.",
    )
    docker_mounts: str = Field(
        default="",
        description="Comma-separated host folders mounted at the same path in runtime containers (a local "
        "storage root, for example).",
    )
    service_host: str = Field(
        default="127.0.0.1",
        description="The address the control plane reaches this host's service containers at (their endpoints "
        "listen on the host's network); set it where the control plane runs on another host.",
    )
    docker_source: Path | None = Field(
        default=None,
        description="Source checkout runtime images are built from; default: found from the package.",
    )
    api_url: str | None = Field(default=None, description="Control plane URL a standalone worker reports to.")
    token: SecretStr | None = Field(default=None, description="Bearer token of a standalone worker.")
    broker_url: str | None = Field(
        default=None, description="Celery broker a standalone worker consumes from."
    )
    pools: str = Field(
        default="SYSTEM_COMPUTE_POOL_CPU",
        description="Comma-separated compute pools a standalone worker serves.",
    )
    gpus: int | None = Field(
        default=None, description="GPUs this worker offers; default: counted with nvidia-smi."
    )
    visibility_timeout_s: float = Field(
        default=6 * 3600.0,
        description="Redis redelivers an unacknowledged shard message after this long; keep it above the longest "
        "shard (the reaper, not redelivery, recovers shards of dead workers).",
    )
    worker_heartbeat_interval_s: float = Field(
        default=10.0, description="How often a worker tells the control plane it is alive."
    )
    slots: int = Field(
        default_factory=lambda: max(2, os.cpu_count() or 1),
        description="How many shards this worker runs at once.",
    )
    heartbeat_interval_s: float = Field(
        default=2.0, description="How often a running shard's heartbeat is sent."
    )
    log_flush_interval_s: float = Field(
        default=0.5, description="How often runtime output is shipped to job logs."
    )
    cache_dir: Path | None = Field(
        default=None, description="Host cache for model versions; default $RUNBATCH_HOME/cache."
    )
    log_format: LogFormat = Field(
        default="text",
        description="Log lines of a standalone worker as 'text' or 'json' (one object per line, with job "
        "and shard ids).",
    )
    fork_runtimes: bool = Field(
        default=True,
        description="Process executor: fork each runtime from a fork server that imported the runtime's "
        "libraries (and RUNBATCH_PRELOAD) once, so a shard starts in milliseconds; false starts a new "
        "interpreter per shard (a few seconds of CPU each).",
    )
    preload: str = Field(
        default="sklearn",
        description="Comma-separated modules the fork server imports ahead of time (model frameworks).",
    )
    python: str | None = Field(
        default=None, description="Python interpreter for runtime processes; default the worker's own."
    )
