"""MODEL_MONITOR_DRIFT_METRIC, MODEL_MONITOR_PERFORMANCE_METRIC and MODEL_MONITOR_STAT_METRIC.

Snowflake's table functions over a monitor's stored metrics, with its argument lists and output
columns: ``(monitor, metric, [column,] [granularity [, start_time [, end_time [, extra_args]]]])``.
Metrics are stored per the monitor's aggregation window, so the granularity must be that window
(NULL or omitted means it); start_time defaults to 60 days ago and end_time to now.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy.orm import Session

from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import complete_name, parse_qualified_name
from runbatch.wire.monitors import MetricKind
from server.db.tables import ModelMonitorRow
from server.monitoring import service
from server.monitoring.metrics import DRIFT_METRICS, STAT_METRICS, performance_metrics
from server.monitoring.windows import canonical_window

__all__ = ["TABLE_FUNCTIONS", "metric_names", "metric_table"]

_DRIFT = "MODEL_MONITOR_DRIFT_METRIC"
_PERFORMANCE = "MODEL_MONITOR_PERFORMANCE_METRIC"
_STAT = "MODEL_MONITOR_STAT_METRIC"
TABLE_FUNCTIONS = frozenset({_DRIFT, _PERFORMANCE, _STAT})

_KIND: dict[str, MetricKind] = {_DRIFT: "DRIFT", _PERFORMANCE: "PERFORMANCE", _STAT: "STAT"}
_DEFAULT_LOOKBACK = timedelta(days=60)

_TS = pa.timestamp("us")
_SCHEMAS = {
    _DRIFT: pa.schema(
        [
            ("EVENT_TIMESTAMP", _TS),
            ("METRIC_VALUE", pa.float64()),
            ("BASELINE_COUNT_USED", pa.int64()),
            ("BASELINE_COUNT_UNUSED", pa.int64()),
            ("COUNT_USED", pa.int64()),
            ("COUNT_UNUSED", pa.int64()),
            ("METRIC_NAME", pa.string()),
            ("COLUMN_NAME", pa.string()),
            ("SEGMENT_COLUMN", pa.string()),
            ("SEGMENT_VALUE", pa.string()),
        ]
    ),
    _PERFORMANCE: pa.schema(
        [
            ("EVENT_TIMESTAMP", _TS),
            ("METRIC_VALUE", pa.float64()),
            ("COUNT_USED", pa.int64()),
            ("COUNT_UNUSED", pa.int64()),
            ("METRIC_NAME", pa.string()),
            ("SEGMENT_COLUMN", pa.string()),
            ("SEGMENT_VALUE", pa.string()),
        ]
    ),
    _STAT: pa.schema(
        [
            ("EVENT_TIMESTAMP", _TS),
            ("METRIC_VALUE", pa.float64()),
            ("METRIC_NAME", pa.string()),
            ("COLUMN_NAME", pa.string()),
            ("SEGMENT_COLUMN", pa.string()),
            ("SEGMENT_VALUE", pa.string()),
        ]
    ),
}


def _text(function: str, what: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidArgumentError(f"{function}: {what} must be a non-empty string, got {value!r}.")
    return value.strip()


def _timestamp(function: str, what: str, value: Any, default: datetime) -> datetime:
    if value is None:
        return default
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgumentError(f"{function}: {what} {value!r} is not a timestamp.") from None
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if not isinstance(value, datetime):
        raise InvalidArgumentError(f"{function}: {what} must be a timestamp, got {value!r}.")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _segment(function: str, value: Any) -> tuple[str, str] | None:
    if value is None:
        return None
    try:
        parsed = json.loads(value) if isinstance(value, str) else value
        segments = parsed["SEGMENTS"]
        if len(segments) != 1:
            raise InvalidArgumentError(
                f"{function}: segment queries take exactly one segment column:value pair; got {len(segments)}."
            )
        return str(segments[0]["column"]), str(segments[0]["value"])
    except (ValueError, KeyError, TypeError, IndexError):
        raise InvalidArgumentError(
            f"{function}: extra_args must be JSON like "
            '\'{"SEGMENTS": [{"column": "<segment_column_name>", "value": "<segment_value>"}]}\'.'
        ) from None


def _monitor(
    session: Session, function: str, name: str, database: str | None, schema: str | None
) -> ModelMonitorRow:
    db, sch, monitor = complete_name(parse_qualified_name(name), database, schema)
    if db is None or sch is None:
        raise InvalidArgumentError(
            f"{function}: cannot resolve model monitor {name}: there is no current database or schema; qualify it "
            "(DB.SCHEMA.MONITOR)."
        )
    return service.get_monitor(session, db, sch, monitor)


def metric_names(row: ModelMonitorRow, kind: MetricKind) -> tuple[str, ...]:
    """The metrics of ``kind`` a monitor has (performance metrics depend on its model's task)."""
    if kind == "DRIFT":
        return DRIFT_METRICS
    if kind == "STAT":
        return STAT_METRICS
    return performance_metrics(row.model_task)


def metric_table(
    session: Session, function: str, args: list[Any], *, database: str | None, schema: str | None
) -> pa.Table:
    """The rows of one table function call; ``args`` are the evaluated argument values."""
    function = function.upper()
    has_column = function != _PERFORMANCE
    required = 3 if has_column else 2
    if not required <= len(args) <= required + 4:
        shape = "<monitor>, <metric>" + (", <column>" if has_column else "")
        raise InvalidArgumentError(
            f"{function} takes ({shape} [, <granularity> [, <start_time> [, <end_time> [, <extra_args>]]]]); "
            f"got {len(args)} arguments."
        )
    row = _monitor(session, function, _text(function, "the model monitor name", args[0]), database, schema)
    metric = _text(function, "the metric name", args[1]).upper()
    allowed = metric_names(row, _KIND[function])
    if metric not in allowed:
        raise InvalidArgumentError(
            f"{function}: metric {metric!r} is not available for model monitor {row.name} "
            f"({row.model_task}); use one of {', '.join(allowed)}."
        )
    if function == _DRIFT and not row.baseline:
        raise InvalidArgumentError(
            f"Model monitor {row.name} has no baseline: drift metrics need one. Create the monitor with "
            "ModelMonitorSourceConfig(baseline=...)."
        )
    column = service.monitored_column(row, _text(function, "the column name", args[2])) if has_column else ""
    rest = args[required:] + [None] * (4 - len(args[required:]))
    granularity, start, end, extra = rest
    window = canonical_window(row.aggregation_window)
    if granularity is not None and canonical_window(str(granularity)) != window:
        raise InvalidArgumentError(
            f"{function}: model monitor {row.name} stores metrics per its aggregation window ({window}); "
            f"pass that granularity or NULL, not {granularity!r}."
        )
    now = datetime.now(UTC)
    start_at = _timestamp(function, "start_time", start, now - _DEFAULT_LOOKBACK)
    end_at = _timestamp(function, "end_time", end, now)
    segment = _segment(function, extra)
    found = service.metric_rows(
        session, row, _KIND[function], metric, column, segment=segment, start=start_at, end=end_at
    )
    seg_column, seg_value = segment if segment else (None, None)
    columns: dict[str, list[Any]] = {
        "EVENT_TIMESTAMP": [m.event_timestamp.astimezone(UTC).replace(tzinfo=None) for m in found],
        "METRIC_VALUE": [m.metric_value for m in found],
        "BASELINE_COUNT_USED": [m.baseline_count_used for m in found],
        "BASELINE_COUNT_UNUSED": [m.baseline_count_unused for m in found],
        "COUNT_USED": [m.count_used for m in found],
        "COUNT_UNUSED": [m.count_unused for m in found],
        "METRIC_NAME": [metric] * len(found),
        "COLUMN_NAME": [column] * len(found),
        "SEGMENT_COLUMN": [seg_column] * len(found),
        "SEGMENT_VALUE": [seg_value] * len(found),
    }
    schema_ = _SCHEMAS[function]
    return pa.table({f.name: pa.array(columns[f.name], type=f.type) for f in schema_}, schema=schema_)
