"""Dispatch over Celery: one queue per compute pool, one ``runbatch.run_shard`` message per shard.

The server only sends messages by task name; it never imports the worker. A lost message is
harmless: the shard stays PENDING in the database and the reaper sends it again.
"""

from __future__ import annotations

import logging
from uuid import UUID

import redis
from celery import Celery

__all__ = ["RUN_SERVICE_TASK", "RUN_SHARD_TASK", "CeleryDispatcher", "celery_client"]

log = logging.getLogger("runbatch.server.dispatch")

RUN_SHARD_TASK = "runbatch.run_shard"
RUN_SERVICE_TASK = "runbatch.run_service"


def celery_client(broker_url: str, visibility_timeout_s: float) -> Celery:
    app = Celery("runbatch", broker=broker_url)
    app.conf.update(
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": int(visibility_timeout_s)},
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_serializer="json",
        accept_content=["json"],
    )
    return app


class CeleryDispatcher:
    def __init__(self, broker_url: str, visibility_timeout_s: float = 6 * 3600) -> None:
        self.app = celery_client(broker_url, visibility_timeout_s)
        self._redis = (
            redis.Redis.from_url(broker_url) if broker_url.startswith(("redis://", "rediss://")) else None
        )

    def dispatch(self, pool: str, shard_ids: list[UUID]) -> None:
        for shard_id in shard_ids:
            try:
                self.app.send_task(
                    RUN_SHARD_TASK,
                    args=[str(shard_id)],
                    queue=pool,
                    retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
                )
            except Exception as exc:  # the broker is down: the reaper resends when it is back
                log.warning("could not send shard %s to pool %s: %s", shard_id, pool, exc.__class__.__name__)

    def dispatch_service(self, pool: str, service_id: UUID) -> None:
        """A job service goes to the pool's queue like a shard; the worker that takes it claims it first."""
        self.app.send_task(
            RUN_SERVICE_TASK,
            args=[str(service_id)],
            queue=pool,
            retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5},
        )

    def container_engine_problem(self) -> str | None:
        return None  # workers of the pool say so when they run shards as processes

    def pending_messages(self, pool: str) -> int | None:
        if self._redis is None:
            return None
        try:
            return int(self._redis.llen(pool))
        except redis.RedisError:
            return None
