"""``GET /metrics``: the control plane's Prometheus metrics, for a bearer token like every other route."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from server.deps import ControlPlaneDep, UserDep

__all__ = ["router"]

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response)
def metrics(cp: ControlPlaneDep, _: UserDep) -> Response:
    """Jobs by status, shards and queue depth per pool, worker capacity, shard durations, rows processed."""
    # The classic text format (0.0.4): every Prometheus version reads it.
    return Response(cp.metrics.exposition(), media_type=CONTENT_TYPE_PLAIN_0_0_4)
