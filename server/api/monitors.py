"""Model monitors: create, list, describe, drop, suspend, resume, refresh, and metric series for charts."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, status

from runbatch.errors import InvalidArgumentError, NotFoundError
from runbatch.wire.monitors import MetricKind, MetricSeries, MonitorCreate, MonitorPublic, MonitorRefresh
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.monitoring import refresh, service
from server.monitoring.functions import metric_names

router = APIRouter(tags=["monitors"])

_MONITORS = "/databases/{database}/schemas/{schema}/monitors"
_MONITOR = _MONITORS + "/{name}"


@router.post(_MONITORS, status_code=status.HTTP_201_CREATED)
def create_monitor(
    database: str, schema: str, body: MonitorCreate, cp: ControlPlaneDep, session: SessionDep, user: UserDep
) -> MonitorPublic:
    """CREATE MODEL MONITOR: the source's columns are checked now; the first refresh follows on the
    next maintenance pass (or ``POST .../refresh``)."""
    row = refresh.create_monitor(cp, session, database, schema, body, owner=user.name)
    session.commit()
    return service.monitor_public(row)


@router.get(_MONITORS)
def list_monitors(database: str, schema: str, session: SessionDep, _: UserDep) -> list[MonitorPublic]:
    return [service.monitor_public(m) for m in service.find_monitors(session, database, schema)]


@router.get(_MONITOR)
def get_monitor(database: str, schema: str, name: str, session: SessionDep, _: UserDep) -> MonitorPublic:
    return service.monitor_public(service.get_monitor(session, database, schema, name))


@router.delete(_MONITOR, status_code=status.HTTP_204_NO_CONTENT)
def drop_monitor(
    database: str, schema: str, name: str, session: SessionDep, _: UserDep, if_exists: bool = False
) -> None:
    try:
        row = service.get_monitor(session, database, schema, name)
    except NotFoundError:
        if if_exists:
            return
        raise
    service.drop_monitor(session, row)
    session.commit()


@router.post(_MONITOR + "/suspend")
def suspend_monitor(database: str, schema: str, name: str, session: SessionDep, _: UserDep) -> MonitorPublic:
    """Stop periodic refreshes; stored metrics stay queryable."""
    row = service.get_monitor(session, database, schema, name)
    service.set_state(session, row, "SUSPENDED")
    session.commit()
    return service.monitor_public(row)


@router.post(_MONITOR + "/resume")
def resume_monitor(database: str, schema: str, name: str, session: SessionDep, _: UserDep) -> MonitorPublic:
    row = service.get_monitor(session, database, schema, name)
    service.set_state(session, row, "ACTIVE")
    session.commit()
    return service.monitor_public(row)


@router.post(_MONITOR + "/refresh")
def refresh_monitor(
    database: str, schema: str, name: str, cp: ControlPlaneDep, session: SessionDep, _: UserDep
) -> MonitorRefresh:
    """Recompute the metrics now (an active monitor only, as a suspended one never refreshes)."""
    row = service.get_monitor(session, database, schema, name)
    if row.state != "ACTIVE":
        raise InvalidArgumentError(f"Model monitor {row.name} is suspended; resume it before refreshing.")
    result = refresh.refresh_monitor(cp, session, row)
    session.commit()
    return result


@router.get(_MONITOR + "/metrics")
def metric_series(
    database: str,
    schema: str,
    name: str,
    session: SessionDep,
    _: UserDep,
    kind: MetricKind,
    metric: str,
    column: str | None = None,
    segment_column: str | None = None,
    segment_value: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> MetricSeries:
    """One metric over time, oldest window first: ``kind=DRIFT&metric=JENSEN_SHANNON&column=AGE``,
    ``kind=PERFORMANCE&metric=F1_SCORE``, ``kind=STAT&metric=COUNT_NULL&column=AGE``."""
    row = service.get_monitor(session, database, schema, name)
    metric = metric.upper()
    if metric not in metric_names(row, kind):
        raise InvalidArgumentError(
            f"Metric {metric!r} is not a {kind} metric of model monitor {row.name} ({row.model_task}); use one "
            f"of {', '.join(metric_names(row, kind))}."
        )
    if (kind == "PERFORMANCE") == (column is not None):
        raise InvalidArgumentError(
            "Pass `column` for DRIFT and STAT metrics (a feature, prediction or actual column), and not for "
            "PERFORMANCE metrics."
        )
    if (segment_column is None) != (segment_value is None):
        raise InvalidArgumentError("Pass both `segment_column` and `segment_value`, or neither.")
    segment = (
        (segment_column, segment_value) if segment_column is not None and segment_value is not None else None
    )
    if column is not None:
        column = service.monitored_column(row, column)
    return service.series(
        session, row, kind, metric, column, segment=segment, start=_utc(start), end=_utc(end)
    )


def _utc(value: datetime | None) -> datetime | None:
    """A timestamp without a zone is UTC, as the metric windows are."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
