"""Creating a monitor (its source checked column by column) and refreshing its metrics.

A source is a runbatch table (``[db.][schema.]table``) or a stage location of Parquet files
(``@stage/path``, e.g. a finished run_batch job's output); it is read through the SQL layer, so
both resolve exactly as a SELECT would. A refresh recomputes every window from all source rows
and replaces the monitor's stored metrics in one transaction.
"""

from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError
from runbatch.identifiers import complete_name, parse_qualified_name, qualified, resolve_identifier
from runbatch.stage.paths import parse_stage_path
from runbatch.wire.monitors import MonitorCreate, MonitorRefresh
from server.control_plane import ControlPlane
from server.db.tables import ModelMonitorRow, utcnow
from server.monitoring import service
from server.monitoring.metrics import MonitorColumns, compute_metrics, performance_metrics
from server.monitoring.windows import aggregation_window, refresh_interval
from server.registry import service as registry
from server.registry.service import functions_of
from server.resources.service import get_schema
from server.sql.query import translate
from server.sql.results import open_sources

__all__ = ["create_monitor", "read_source", "refresh_due", "refresh_monitor", "source_name"]

log = logging.getLogger("runbatch.server.monitoring")

_MONITORED_TASKS = ("TABULAR_BINARY_CLASSIFICATION", "TABULAR_MULTI_CLASSIFICATION", "TABULAR_REGRESSION")


def source_name(text: str, database: str, schema: str) -> str:
    """A stage location or a table name, fully qualified in the monitor's database and schema."""
    text = text.strip()
    if text.startswith("@"):
        location = parse_stage_path(text, database=database, schema=schema).as_dir()
        # The location becomes SQL text (``SELECT * FROM @...``): nothing in it may end the reference.
        if any(c.isspace() or c in "'();" for c in location):
            raise InvalidArgumentError(
                f"The monitor source {text!r} has a space, quote, parenthesis or semicolon; name a stage location "
                "without them."
            )
        return location
    db, sch, name = complete_name(parse_qualified_name(text), database, schema)
    assert db is not None and sch is not None
    return qualified(db, sch, name)


def _select(source: str) -> str:
    if source.startswith("@"):
        # Only the data files of a run_batch output folder, not its manifest or _SUCCESS.
        return f"SELECT * FROM {source} (PATTERN => '.*[.]parquet')"
    return f"SELECT * FROM {source}"


def read_source(cp: ControlPlane, session: Session, source: str, *, limit: int | None = None) -> pd.DataFrame:
    """The rows of a source table or stage location as pandas (``limit=0``: just its columns)."""
    sql = _select(source) + (f" LIMIT {limit}" if limit is not None else "")
    try:
        sources = open_sources(session, cp.storage, cp.secrets, translate(sql), database=None, schema=None)
    except NotFoundError as exc:
        raise NotFoundError(f"The monitor source {source} cannot be read: {exc}") from None
    try:
        table = sources.reader(sources.query.sql, failed=f"Reading {source} failed").read_all()
    finally:
        sources.close()
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _resolve(name: str, available: list[str]) -> str | None:
    """A column as named, or as Snowflake resolves the identifier (``id`` -> ``ID``)."""
    if name in available:
        return name
    try:
        resolved = resolve_identifier(name)
    except InvalidArgumentError:
        return None
    return resolved if resolved in available else None


def _columns(label: str, names: list[str], available: list[str]) -> list[str]:
    resolved = [_resolve(n, available) for n in names]
    if any(r is None for r in resolved):
        raise InvalidArgumentError(f"{label} column(s): {names} do not exist in source.")
    return [r for r in resolved if r is not None]


def _monitor_columns(body: MonitorCreate, available: list[str]) -> MonitorColumns:
    timestamp = _resolve(body.timestamp_column, available)
    if timestamp is None:
        raise InvalidArgumentError(f"Timestamp column {body.timestamp_column} does not exist in source.")
    cols = MonitorColumns(
        timestamp=timestamp,
        ids=_columns("ID", body.id_columns, available),
        prediction_score=_columns("Prediction Score", body.prediction_score_columns, available),
        prediction_class=_columns("Prediction Class", body.prediction_class_columns, available),
        actual_score=_columns("Actual Score", body.actual_score_columns, available),
        actual_class=_columns("Actual Class", body.actual_class_columns, available),
        segments=_columns("Segment", body.segment_columns, available),
    )
    custom = _columns("Custom Metric", body.custom_metric_columns, available)
    taken = {cols.timestamp, *cols.ids, *cols.segments, *custom, *cols.monitored}
    return MonitorColumns(**{**cols.__dict__, "features": [c for c in available if c not in taken]})


def _check_columns_for_task(cols: MonitorColumns, task: str) -> None:
    for label, names in (
        ("prediction_score_columns", cols.prediction_score),
        ("prediction_class_columns", cols.prediction_class),
        ("actual_score_columns", cols.actual_score),
        ("actual_class_columns", cols.actual_class),
    ):
        if len(names) > 1:
            raise InvalidArgumentError(
                f"runbatch monitors one column of each kind; {label} names {len(names)}: {names}."
            )
    if not (cols.prediction_score or cols.prediction_class):
        raise InvalidArgumentError(
            "A model monitor needs prediction_score_columns or prediction_class_columns in its source_config."
        )
    if task == "TABULAR_REGRESSION" and not cols.prediction_score:
        raise InvalidArgumentError("A regression model's monitor needs prediction_score_columns.")


def create_monitor(
    cp: ControlPlane, session: Session, database: str, schema: str, body: MonitorCreate, *, owner: str
) -> ModelMonitorRow:
    sch = get_schema(session, database, schema)
    name = resolve_identifier(body.name)
    exists = session.scalars(
        select(ModelMonitorRow.id).where(ModelMonitorRow.schema_id == sch.id, ModelMonitorRow.name == name)
    ).first()
    if exists is not None:
        raise AlreadyExistsError(f"Model monitor {qualified(database, schema, name)} already exists.")
    version = registry.get_version(
        session, body.model_database, body.model_schema, body.model_name, body.version_name
    )
    functions = functions_of(version.spec)
    if not any(f.target_method == body.function_name for f in functions):
        found = {f.target_method for f in functions}
        raise InvalidArgumentError(
            f"Function with name {body.function_name} does not exist in the given model version. Found: {found}."
        )
    task = str(version.spec.get("task") or "UNKNOWN")
    if task == "UNKNOWN":
        raise InvalidArgumentError("Registry model must be logged with task in order to be monitored.")
    if task not in _MONITORED_TASKS:
        raise InvalidArgumentError(
            f"Model monitors watch {', '.join(_MONITORED_TASKS)} models; this version's task is {task}."
        )
    refresh_interval(body.refresh_interval)
    aggregation_window(body.aggregation_window)
    source = source_name(body.source, database, schema)
    available = [str(c) for c in read_source(cp, session, source, limit=0).columns]
    cols = _monitor_columns(body, available)
    _check_columns_for_task(cols, task)
    baseline = source_name(body.baseline, database, schema) if body.baseline else None
    if baseline is not None:
        read_source(cp, session, baseline, limit=0)
    row = ModelMonitorRow(
        schema_id=sch.id,
        name=name,
        version_id=version.id,
        function_name=body.function_name,
        warehouse_name=body.warehouse_name,
        model_task=task,
        source=source,
        baseline=baseline,
        columns=cols.to_dict(),
        refresh_interval=body.refresh_interval,
        aggregation_window=body.aggregation_window,
        state="ACTIVE",
        comment=body.comment,
        owner=owner,
    )
    session.add(row)
    session.flush()
    return row


def refresh_monitor(cp: ControlPlane, session: Session, row: ModelMonitorRow) -> MonitorRefresh:
    """Recompute every metric of ``row`` from its source (and baseline) and store them."""
    # One refresh of a monitor at a time (a periodic and an on-demand one, or two server replicas):
    # interleaved delete-and-insert would otherwise leave both sets of rows on Postgres.
    session.execute(select(ModelMonitorRow.id).where(ModelMonitorRow.id == row.id).with_for_update())
    cols = service.columns_of(row)
    source = read_source(cp, session, row.source)
    baseline = read_source(cp, session, row.baseline) if row.baseline else None
    values = compute_metrics(
        source, baseline, cols, row.model_task, aggregation_window(row.aggregation_window)
    )
    at = utcnow()
    service.replace_metrics(session, row, values, at)
    windows = len({v.event_timestamp for v in values})
    return MonitorRefresh(name=row.name, refreshed_on=at, windows=windows, metric_rows=len(values))


def is_due(row: ModelMonitorRow, now: datetime) -> bool:
    if row.state != "ACTIVE":
        return False
    if row.last_refreshed_on is None:
        return True
    return now - row.last_refreshed_on >= refresh_interval(row.refresh_interval)


def refresh_due(cp: ControlPlane) -> int:
    """Refresh every active monitor whose refresh_interval has elapsed; each in its own transaction.

    A failing source records its error on the monitor (DESCRIBE shows it) and the others go on.
    """
    with cp.read_sessionmaker() as session:
        ids = [m.id for m in session.scalars(select(ModelMonitorRow)) if is_due(m, utcnow())]
    done = 0
    for monitor_id in ids:
        with cp.sessionmaker() as session:
            row = session.get(ModelMonitorRow, monitor_id)
            if row is None or not is_due(row, utcnow()):
                continue
            try:
                refresh_monitor(cp, session, row)
                session.commit()
                done += 1
            except Exception as exc:
                session.rollback()
                log.warning("refreshing model monitor %s failed: %s", row.name, exc)
                row = session.get(ModelMonitorRow, monitor_id)
                if row is not None:
                    row.last_error = str(exc)[:2000]
                    row.last_refreshed_on = utcnow()
                    session.commit()
    return done


def performance_metric_names(row: ModelMonitorRow) -> tuple[str, ...]:
    return performance_metrics(row.model_task)
