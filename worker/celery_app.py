"""The Celery app of a standalone worker: one thin task that runs a shard."""

from __future__ import annotations

import uuid

from celery import Celery

from worker.services import ServiceRunner
from worker.settings import WorkerSettings
from worker.shard_runner import ShardRunner

__all__ = ["RUN_SERVICE_TASK", "RUN_SHARD_TASK", "create_worker_app"]

# The name the control plane sends (server/dispatch.py); a test keeps the two equal.
RUN_SHARD_TASK = "runbatch.run_shard"
RUN_SERVICE_TASK = "runbatch.run_service"


def create_worker_app(
    settings: WorkerSettings, runner: ShardRunner, services: ServiceRunner | None = None
) -> Celery:
    app = Celery("runbatch", broker=settings.broker_url)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,  # ride out a broker restart
        broker_transport_options={"visibility_timeout": int(settings.visibility_timeout_s)},
        task_acks_late=True,  # safe: run() claims first, so a redelivered message does nothing
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        task_serializer="json",
        accept_content=["json"],
    )

    @app.task(name=RUN_SHARD_TASK)  # type: ignore[untyped-decorator]
    def run_shard(shard_id: str) -> None:
        runner.run(uuid.UUID(shard_id))

    if services is not None:

        @app.task(name=RUN_SERVICE_TASK)  # type: ignore[untyped-decorator]
        def run_service(service_id: str) -> None:
            services.run(uuid.UUID(service_id))

    return app
