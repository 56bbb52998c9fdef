"""Model monitors in the metadata database: look-ups, listings, state, stored metrics. Functions flush."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError, NotFoundError
from runbatch.identifiers import qualified
from runbatch.wire.monitors import MetricKind, MetricPoint, MetricSeries, MonitorPublic
from server.db.tables import ModelMonitorMetricRow, ModelMonitorRow, SchemaRow
from server.monitoring.metrics import MetricValue, MonitorColumns
from server.resources.service import get_schema

__all__ = [
    "drop_monitor",
    "find_monitors",
    "get_monitor",
    "metric_rows",
    "monitor_public",
    "monitored_column",
    "replace_metrics",
    "series",
    "set_state",
]


def get_monitor(session: Session, database: str, schema: str, name: str) -> ModelMonitorRow:
    sch = get_schema(session, database, schema)
    row = session.scalars(
        select(ModelMonitorRow).where(ModelMonitorRow.schema_id == sch.id, ModelMonitorRow.name == name)
    ).one_or_none()
    if row is None:
        raise NotFoundError(f"Unable to find model monitor '{qualified(database, schema, name)}'")
    return row


def find_monitors(session: Session, database: str, schema: str) -> list[ModelMonitorRow]:
    sch = get_schema(session, database, schema)
    return list(
        session.scalars(
            select(ModelMonitorRow).where(ModelMonitorRow.schema_id == sch.id).order_by(ModelMonitorRow.name)
        )
    )


def drop_monitor(session: Session, row: ModelMonitorRow) -> None:
    session.execute(delete(ModelMonitorMetricRow).where(ModelMonitorMetricRow.monitor_id == row.id))
    session.delete(row)
    session.flush()


def set_state(session: Session, row: ModelMonitorRow, state: str) -> None:
    """ACTIVE or SUSPENDED. Snowflake refuses to suspend a suspended monitor (and to resume an active one)."""
    if row.state == state:
        verb = "suspended" if state == "SUSPENDED" else "active"
        raise InvalidArgumentError(f"Model monitor {row.name} is already {verb}.")
    row.state = state
    session.flush()


def replace_metrics(
    session: Session, row: ModelMonitorRow, values: Sequence[MetricValue], at: datetime
) -> None:
    session.execute(delete(ModelMonitorMetricRow).where(ModelMonitorMetricRow.monitor_id == row.id))
    session.add_all(
        ModelMonitorMetricRow(
            monitor_id=row.id,
            kind=v.kind,
            metric_name=v.metric_name,
            column_name=v.column_name,
            segment_column=v.segment_column,
            segment_value=v.segment_value,
            event_timestamp=v.event_timestamp,
            metric_value=v.metric_value,
            count_used=v.count_used,
            count_unused=v.count_unused,
            baseline_count_used=v.baseline_count_used,
            baseline_count_unused=v.baseline_count_unused,
        )
        for v in values
    )
    row.last_refreshed_on = at
    row.last_error = None
    session.flush()


def metric_rows(
    session: Session,
    row: ModelMonitorRow,
    kind: MetricKind,
    metric_name: str,
    column_name: str,
    *,
    segment: tuple[str, str] | None,
    start: datetime | None,
    end: datetime | None,
) -> list[ModelMonitorMetricRow]:
    segment_column, segment_value = segment or ("", "")
    query = select(ModelMonitorMetricRow).where(
        ModelMonitorMetricRow.monitor_id == row.id,
        ModelMonitorMetricRow.kind == kind,
        ModelMonitorMetricRow.metric_name == metric_name,
        ModelMonitorMetricRow.column_name == column_name,
        ModelMonitorMetricRow.segment_column == segment_column,
        ModelMonitorMetricRow.segment_value == segment_value,
    )
    if start is not None:
        query = query.where(ModelMonitorMetricRow.event_timestamp >= start)
    if end is not None:
        query = query.where(ModelMonitorMetricRow.event_timestamp < end)
    return list(session.scalars(query.order_by(ModelMonitorMetricRow.event_timestamp)))


def series(
    session: Session,
    row: ModelMonitorRow,
    kind: MetricKind,
    metric_name: str,
    column_name: str | None,
    *,
    segment: tuple[str, str] | None,
    start: datetime | None,
    end: datetime | None,
) -> MetricSeries:
    found = metric_rows(
        session, row, kind, metric_name, column_name or "", segment=segment, start=start, end=end
    )
    return MetricSeries(
        monitor=row.name,
        kind=kind,
        metric_name=metric_name,
        column_name=column_name,
        segment_column=segment[0] if segment else None,
        segment_value=segment[1] if segment else None,
        granularity=row.aggregation_window,
        points=[
            MetricPoint(
                event_timestamp=m.event_timestamp,
                metric_value=m.metric_value,
                count_used=m.count_used,
                count_unused=m.count_unused,
            )
            for m in found
        ],
    )


def columns_of(row: ModelMonitorRow) -> MonitorColumns:
    return MonitorColumns.from_dict(row.columns)


def monitored_column(row: ModelMonitorRow, name: str) -> str:
    """A feature, prediction or actual column of the monitor, as named or case-insensitively."""
    monitored = columns_of(row).monitored
    if name in monitored:
        return name
    matches = [c for c in monitored if c.upper() == name.upper()]
    if len(matches) == 1:
        return matches[0]
    raise InvalidArgumentError(
        f"Column {name} is not a feature, prediction or actual column of model monitor {row.name}; it has "
        f"{monitored}."
    )


def monitor_public(row: ModelMonitorRow) -> MonitorPublic:
    cols = columns_of(row)
    version = row.version
    model = version.model
    model_schema: SchemaRow = model.schema
    return MonitorPublic(
        name=row.name,
        database_name=row.schema.database.name,
        schema_name=row.schema.name,
        created_on=row.created_on,
        warehouse_name=row.warehouse_name,
        refresh_interval=row.refresh_interval,
        aggregation_window=row.aggregation_window,
        model_task=row.model_task,
        monitor_state="SUSPENDED" if row.state == "SUSPENDED" else "ACTIVE",
        source=row.source,
        baseline=row.baseline,
        model_name=model.name,
        model_database=model_schema.database.name,
        model_schema=model_schema.name,
        version_name=version.name,
        function_name=row.function_name,
        timestamp_column=cols.timestamp,
        id_columns=cols.ids,
        prediction_score_columns=cols.prediction_score,
        prediction_class_columns=cols.prediction_class,
        actual_score_columns=cols.actual_score,
        actual_class_columns=cols.actual_class,
        segment_columns=cols.segments,
        feature_columns=cols.features,
        comment=row.comment,
        last_refreshed_on=row.last_refreshed_on,
        last_error=row.last_error,
    )
