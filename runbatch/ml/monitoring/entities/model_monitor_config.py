"""Mirror of ``snowflake.ml.monitoring.entities.model_monitor_config``: what ``Registry.add_monitor`` takes."""

from __future__ import annotations

from dataclasses import dataclass

from runbatch.ml.model._model_version import ModelVersion

__all__ = ["ModelMonitorConfig", "ModelMonitorSourceConfig"]


@dataclass
class ModelMonitorSourceConfig:
    """Where the monitored rows are and what each column is."""

    source: str
    """Table (``[db.][schema.]name``) with the logged predictions; runbatch also takes a stage location
    of Parquet files (``@stage/path``), such as a run_batch job's output."""

    timestamp_column: str
    """Column with each row's timestamp: it decides the row's aggregation window."""

    id_columns: list[str]
    """Columns that identify a row."""

    prediction_score_columns: list[str] | None = None
    """Prediction scores: regression values, or classification probabilities."""

    prediction_class_columns: list[str] | None = None
    """Predicted classes of a classification model."""

    actual_score_columns: list[str] | None = None
    """Actual (ground truth) scores."""

    actual_class_columns: list[str] | None = None
    """Actual (ground truth) classes."""

    baseline: str | None = None
    """Table with baseline rows (same columns) that drift is measured against."""

    segment_columns: list[str] | None = None
    """Columns whose values split the rows into segments, each with its own metrics."""

    custom_metric_columns: list[str] | None = None
    """Columns left out of the monitored features (runbatch computes no custom metrics)."""

    timestamp_custom_metric_table: str | None = None
    """Not supported by runbatch; must stay None."""


@dataclass
class ModelMonitorConfig:
    """Which model version's function is monitored and how often its metrics are computed."""

    model_version: ModelVersion
    """Model version to monitor."""

    model_function_name: str
    """Function of the model version whose predictions the source holds."""

    background_compute_warehouse_name: str
    """Recorded as Snowflake's warehouse name; runbatch refreshes on its control plane."""

    refresh_interval: str = "1 hour"
    """How often metrics are recomputed: '<num> seconds|minutes|hours|days'."""

    aggregation_window: str = "1 day"
    """Width of each metric window: '<num> days'."""
