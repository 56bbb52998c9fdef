"""Model monitors and their metric series on the wire."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

__all__ = [
    "MONITOR_COLUMNS",
    "MetricKind",
    "MetricPoint",
    "MetricSeries",
    "MonitorCreate",
    "MonitorPublic",
    "MonitorRefresh",
    "monitor_listing",
]

MetricKind = Literal["DRIFT", "PERFORMANCE", "STAT"]

# SHOW MODEL MONITORS columns, in Snowflake's order.
MONITOR_COLUMNS = [
    "created_on",
    "name",
    "database_name",
    "schema_name",
    "warehouse_name",
    "refresh_interval",
    "aggregation_window",
    "model_task",
    "monitor_state",
    "source",
    "baseline",
    "model",
    "comment",
]


class MonitorCreate(BaseModel):
    """CREATE MODEL MONITOR's properties, names resolved by the SDK."""

    name: str
    model_database: str
    model_schema: str
    model_name: str
    version_name: str
    function_name: str
    warehouse_name: str
    source: str = Field(description="[db.][schema.]table, or @stage/path of Parquet files (run_batch output)")
    baseline: str | None = None
    timestamp_column: str
    id_columns: list[str]
    prediction_score_columns: list[str] = Field(default_factory=list)
    prediction_class_columns: list[str] = Field(default_factory=list)
    actual_score_columns: list[str] = Field(default_factory=list)
    actual_class_columns: list[str] = Field(default_factory=list)
    segment_columns: list[str] = Field(default_factory=list)
    custom_metric_columns: list[str] = Field(default_factory=list)
    refresh_interval: str = "1 hour"
    aggregation_window: str = "1 day"
    comment: str | None = None


class MonitorPublic(BaseModel):
    name: str
    database_name: str
    schema_name: str
    created_on: datetime
    warehouse_name: str
    refresh_interval: str
    aggregation_window: str
    model_task: str
    monitor_state: Literal["ACTIVE", "SUSPENDED"]
    source: str
    baseline: str | None
    model_name: str
    model_database: str
    model_schema: str
    version_name: str
    function_name: str
    timestamp_column: str
    id_columns: list[str]
    prediction_score_columns: list[str]
    prediction_class_columns: list[str]
    actual_score_columns: list[str]
    actual_class_columns: list[str]
    segment_columns: list[str]
    feature_columns: list[str]
    comment: str | None
    last_refreshed_on: datetime | None
    last_error: str | None


class MonitorRefresh(BaseModel):
    """What one refresh computed."""

    name: str
    refreshed_on: datetime
    windows: int
    metric_rows: int


class MetricPoint(BaseModel):
    event_timestamp: datetime
    metric_value: float | None
    count_used: int | None = None
    count_unused: int | None = None


class MetricSeries(BaseModel):
    """One metric of one column (and segment) over time: what a dashboard chart plots."""

    monitor: str
    kind: MetricKind
    metric_name: str
    column_name: str | None
    segment_column: str | None
    segment_value: str | None
    granularity: str
    points: list[MetricPoint]


def _table_json(text: str | None) -> str:
    if not text:
        return ""
    if text.startswith("@"):
        return json.dumps({"name": text, "status": "ACTIVE"})
    parts = text.split(".")
    return json.dumps(
        {"name": parts[-1], "database_name": parts[0], "schema_name": parts[1], "status": "ACTIVE"}
        if len(parts) == 3
        else {"name": text, "status": "ACTIVE"}
    )


def monitor_listing(public: MonitorPublic) -> dict[str, Any]:
    """A SHOW MODEL MONITORS row: Snowflake's columns, with source, baseline and model as JSON text."""
    return {
        "created_on": public.created_on,
        "name": public.name,
        "database_name": public.database_name,
        "schema_name": public.schema_name,
        "warehouse_name": public.warehouse_name,
        "refresh_interval": public.refresh_interval,
        "aggregation_window": public.aggregation_window,
        "model_task": public.model_task,
        "monitor_state": public.monitor_state,
        "source": _table_json(public.source),
        "baseline": _table_json(public.baseline),
        "model": json.dumps(
            {
                "model_name": public.model_name,
                "version_name": public.version_name,
                "function_name": public.function_name,
                "database_name": public.model_database,
                "schema_name": public.model_schema,
            }
        ),
        "comment": public.comment,
    }
