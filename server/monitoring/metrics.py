"""The metrics of one monitor over its source rows: drift, performance and counts per window and segment.

Pure: frames in, ``MetricValue`` rows out. Definitions (Snowflake documents the names, not the
arithmetic, so these are runbatch's):

- Drift compares a window's values of a column with the baseline's (the same segment's baseline
  rows when the baseline has the segment column). DIFFERENCE_OF_MEANS is mean(window) -
  mean(baseline); WASSERSTEIN is ``scipy.stats.wasserstein_distance``; JENSEN_SHANNON is
  ``scipy.spatial.distance.jensenshannon`` (base 2, so within [0, 1]) of the two histograms over
  10 equal-width bins spanning both samples (category frequencies for text columns);
  POPULATION_STABILITY_INDEX is sum((p - q) * ln(p / q)) over the same bins, shares floored at 1e-6.
- Performance: classification from the prediction class column (or score >= 0.5) against the
  actual class column, ROC_AUC from the prediction score; regression from the prediction and
  actual scores (MAPE as scikit-learn's fraction, not a percentage).
- COUNT is the number of non-null values of a column in a window, COUNT_NULL the number of nulls.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from server.monitoring.windows import window_starts

__all__ = [
    "BINARY_METRICS",
    "DRIFT_METRICS",
    "MULTI_CLASS_METRICS",
    "REGRESSION_METRICS",
    "STAT_METRICS",
    "MetricValue",
    "MonitorColumns",
    "compute_metrics",
    "performance_metrics",
]

DRIFT_METRICS = ("DIFFERENCE_OF_MEANS", "WASSERSTEIN", "JENSEN_SHANNON", "POPULATION_STABILITY_INDEX")
REGRESSION_METRICS = ("RMSE", "MAE", "MAPE", "MSE")
BINARY_METRICS = ("ROC_AUC", "CLASSIFICATION_ACCURACY", "PRECISION", "RECALL", "F1_SCORE")
MULTI_CLASS_METRICS = (
    "CLASSIFICATION_ACCURACY",
    "MACRO_AVERAGE_PRECISION",
    "MACRO_AVERAGE_RECALL",
    "MICRO_AVERAGE_PRECISION",
    "MICRO_AVERAGE_RECALL",
)
STAT_METRICS = ("COUNT", "COUNT_NULL")
_BINS = 10
_PSI_FLOOR = 1e-6


def performance_metrics(task: str) -> tuple[str, ...]:
    if task == "TABULAR_REGRESSION":
        return REGRESSION_METRICS
    if task == "TABULAR_BINARY_CLASSIFICATION":
        return BINARY_METRICS
    if task == "TABULAR_MULTI_CLASSIFICATION":
        return MULTI_CLASS_METRICS
    return ()


@dataclass(frozen=True)
class MonitorColumns:
    timestamp: str
    ids: list[str]
    prediction_score: list[str] = field(default_factory=list)
    prediction_class: list[str] = field(default_factory=list)
    actual_score: list[str] = field(default_factory=list)
    actual_class: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)

    @property
    def monitored(self) -> list[str]:
        """Columns with drift and count metrics: features, predictions, actuals."""
        return [
            *self.features,
            *self.prediction_score,
            *self.prediction_class,
            *self.actual_score,
            *self.actual_class,
        ]

    def to_dict(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "ids": self.ids,
            "prediction_score": self.prediction_score,
            "prediction_class": self.prediction_class,
            "actual_score": self.actual_score,
            "actual_class": self.actual_class,
            "segments": self.segments,
            "features": self.features,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorColumns:
        return cls(
            timestamp=d["timestamp"],
            ids=list(d.get("ids") or []),
            prediction_score=list(d.get("prediction_score") or []),
            prediction_class=list(d.get("prediction_class") or []),
            actual_score=list(d.get("actual_score") or []),
            actual_class=list(d.get("actual_class") or []),
            segments=list(d.get("segments") or []),
            features=list(d.get("features") or []),
        )


@dataclass(frozen=True)
class MetricValue:
    kind: str
    metric_name: str
    column_name: str
    segment_column: str
    segment_value: str
    event_timestamp: datetime
    metric_value: float | None
    count_used: int
    count_unused: int
    baseline_count_used: int | None = None
    baseline_count_unused: int | None = None


def compute_metrics(
    source: pd.DataFrame,
    baseline: pd.DataFrame | None,
    columns: MonitorColumns,
    task: str,
    window: timedelta,
) -> list[MetricValue]:
    """Every metric of every window of the whole population, then of each segment value."""
    rows = source[source[columns.timestamp].notna()]
    starts = window_starts(rows[columns.timestamp], window)
    out: list[MetricValue] = []
    for seg_column, seg_value, part, base in _segments(rows, baseline, columns.segments):
        for start, window_rows in part.groupby(starts.loc[part.index], sort=True):
            at = pd.Timestamp(start).to_pydatetime()
            key = (seg_column, seg_value, at)
            out.extend(_stats(window_rows, columns, key))
            out.extend(_performance(window_rows, columns, task, key))
            if base is not None:
                out.extend(_drift(window_rows, base, columns, key))
    return out


def _segments(
    rows: pd.DataFrame, baseline: pd.DataFrame | None, segment_columns: list[str]
) -> Iterator[tuple[str, str, pd.DataFrame, pd.DataFrame | None]]:
    yield "", "", rows, baseline
    for column in segment_columns:
        for value, part in rows.groupby(rows[column].astype("string"), sort=True, dropna=True):
            base = baseline
            if baseline is not None and column in baseline.columns:
                base = baseline[baseline[column].astype("string") == value]
            yield column, str(value), part, base


def _stats(
    rows: pd.DataFrame, columns: MonitorColumns, key: tuple[str, str, datetime]
) -> Iterator[MetricValue]:
    seg_column, seg_value, at = key
    for column in columns.monitored:
        nulls = int(rows[column].isna().sum())
        present = len(rows) - nulls
        yield MetricValue("STAT", "COUNT", column, seg_column, seg_value, at, float(present), present, nulls)
        yield MetricValue(
            "STAT", "COUNT_NULL", column, seg_column, seg_value, at, float(nulls), nulls, present
        )


def _is_numeric(series: pd.Series) -> bool:
    return bool(pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series))


def _drift(
    rows: pd.DataFrame, baseline: pd.DataFrame, columns: MonitorColumns, key: tuple[str, str, datetime]
) -> Iterator[MetricValue]:
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import wasserstein_distance

    seg_column, seg_value, at = key
    for column in columns.monitored:
        if column not in baseline.columns:
            continue
        current = rows[column].dropna()
        base = baseline[column].dropna()
        counts = (len(current), len(rows) - len(current), len(base), len(baseline) - len(base))
        numeric = _is_numeric(current) and _is_numeric(base)
        values: dict[str, float | None] = dict.fromkeys(DRIFT_METRICS)
        if len(current) and len(base):
            p, q = _histograms(current, base, numeric)
            values["JENSEN_SHANNON"] = float(jensenshannon(p, q, base=2))
            ps, qs = np.maximum(p / p.sum(), _PSI_FLOOR), np.maximum(q / q.sum(), _PSI_FLOOR)
            values["POPULATION_STABILITY_INDEX"] = float(np.sum((ps - qs) * np.log(ps / qs)))
            if numeric:
                a, b = current.to_numpy(dtype=np.float64), base.to_numpy(dtype=np.float64)
                values["DIFFERENCE_OF_MEANS"] = float(a.mean() - b.mean())
                values["WASSERSTEIN"] = float(wasserstein_distance(a, b))
        for name in DRIFT_METRICS:
            yield MetricValue(
                "DRIFT",
                name,
                column,
                seg_column,
                seg_value,
                at,
                values[name],
                counts[0],
                counts[1],
                counts[2],
                counts[3],
            )


def _histograms(current: pd.Series, base: pd.Series, numeric: bool) -> tuple[np.ndarray, np.ndarray]:
    if not numeric:
        categories = sorted(set(current.astype(str)) | set(base.astype(str)))
        p = current.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
        q = base.astype(str).value_counts().reindex(categories, fill_value=0).to_numpy(dtype=np.float64)
        return p, q
    a, b = current.to_numpy(dtype=np.float64), base.to_numpy(dtype=np.float64)
    low, high = min(a.min(), b.min()), max(a.max(), b.max())
    if low == high:
        return np.array([1.0]), np.array([1.0])
    edges = np.linspace(low, high, _BINS + 1)
    return np.histogram(a, bins=edges)[0].astype(np.float64), np.histogram(b, bins=edges)[0].astype(
        np.float64
    )


def _first(names: list[str]) -> str | None:
    return names[0] if names else None


def _performance(
    rows: pd.DataFrame, columns: MonitorColumns, task: str, key: tuple[str, str, datetime]
) -> Iterator[MetricValue]:
    seg_column, seg_value, at = key
    names = performance_metrics(task)
    if not names:
        return
    if task == "TABULAR_REGRESSION":
        values, used = _regression(rows, columns)
    else:
        values, used = _classification(rows, columns, task)
    for name in names:
        yield MetricValue(
            "PERFORMANCE", name, "", seg_column, seg_value, at, values.get(name), used, len(rows) - used
        )


def _regression(rows: pd.DataFrame, columns: MonitorColumns) -> tuple[dict[str, float | None], int]:
    from sklearn import metrics

    predicted, actual = _first(columns.prediction_score), _first(columns.actual_score)
    if predicted is None or actual is None:
        return {}, 0
    both = rows[[predicted, actual]].dropna()
    if both.empty:
        return {}, 0
    y_true = both[actual].to_numpy(dtype=np.float64)
    y_pred = both[predicted].to_numpy(dtype=np.float64)
    mse = float(metrics.mean_squared_error(y_true, y_pred))
    return {
        "MSE": mse,
        "RMSE": float(np.sqrt(mse)),
        "MAE": float(metrics.mean_absolute_error(y_true, y_pred)),
        "MAPE": float(metrics.mean_absolute_percentage_error(y_true, y_pred)),
    }, len(both)


def _classification(
    rows: pd.DataFrame, columns: MonitorColumns, task: str
) -> tuple[dict[str, float | None], int]:
    from sklearn import metrics

    actual = _first(columns.actual_class) or _first(columns.actual_score)
    predicted_class, score = _first(columns.prediction_class), _first(columns.prediction_score)
    if actual is None or (predicted_class is None and score is None):
        return {}, 0
    needed = [c for c in (actual, predicted_class, score) if c is not None]
    both = rows[needed].dropna()
    if both.empty:
        return {}, 0
    y_true = both[actual].to_numpy()
    if predicted_class is not None:
        y_pred = both[predicted_class].to_numpy()
    else:
        assert score is not None
        y_pred = (both[score].to_numpy(dtype=np.float64) >= 0.5).astype(y_true.dtype)
    out: dict[str, float | None] = {"CLASSIFICATION_ACCURACY": float(metrics.accuracy_score(y_true, y_pred))}
    if task == "TABULAR_MULTI_CLASSIFICATION":
        for average in ("macro", "micro"):
            out[f"{average.upper()}_AVERAGE_PRECISION"] = float(
                metrics.precision_score(y_true, y_pred, average=average, zero_division=0)
            )
            out[f"{average.upper()}_AVERAGE_RECALL"] = float(
                metrics.recall_score(y_true, y_pred, average=average, zero_division=0)
            )
        return out, len(both)
    labels = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    positive = 1 if 1 in labels or not labels else labels[-1]
    out["PRECISION"] = float(metrics.precision_score(y_true, y_pred, pos_label=positive, zero_division=0))
    out["RECALL"] = float(metrics.recall_score(y_true, y_pred, pos_label=positive, zero_division=0))
    out["F1_SCORE"] = float(metrics.f1_score(y_true, y_pred, pos_label=positive, zero_division=0))
    if score is not None and len(set(y_true.tolist())) == 2:
        out["ROC_AUC"] = float(
            metrics.roc_auc_score(y_true == positive, both[score].to_numpy(dtype=np.float64))
        )
    else:
        out["ROC_AUC"] = None
    return out, len(both)
