"""Monitor metrics as pure functions: regression, categorical drift, wider windows, intervals."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from sklearn import metrics

from runbatch.errors import InvalidArgumentError
from server.monitoring.metrics import MetricValue, MonitorColumns, compute_metrics
from server.monitoring.windows import aggregation_window, canonical_window, refresh_interval, window_starts

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _pick(
    values: list[MetricValue], kind: str, name: str, column: str = "", segment: str = ""
) -> list[MetricValue]:
    return [
        v
        for v in values
        if v.kind == kind and v.metric_name == name and v.column_name == column and v.segment_value == segment
    ]


def test_regression_metrics_over_two_day_windows() -> None:
    rng = np.random.default_rng(5)
    rows = 120
    frame = pd.DataFrame(
        {
            "ID": np.arange(rows),
            "TS": [T0 + timedelta(hours=i) for i in range(rows)],  # 5 days: windows of 2 days hold 48 rows
            "CITY": rng.choice(["A", "B"], rows),
            "PRED": rng.normal(10, 2, rows),
            "Y": rng.normal(10, 2, rows),
        }
    )
    frame.loc[3, "Y"] = np.nan
    cols = MonitorColumns(
        timestamp="TS", ids=["ID"], prediction_score=["PRED"], actual_score=["Y"], features=["CITY"]
    )
    values = compute_metrics(frame, None, cols, "TABULAR_REGRESSION", aggregation_window("2 days"))
    rmse = _pick(values, "PERFORMANCE", "RMSE")
    starts = window_starts(frame.TS, timedelta(days=2))
    assert [v.event_timestamp for v in rmse] == sorted(set(starts))
    for v in rmse:
        window = frame[starts == v.event_timestamp].dropna(subset=["Y"])
        assert v.metric_value == pytest.approx(
            np.sqrt(metrics.mean_squared_error(window.Y, window.PRED)), rel=1e-12
        )
        assert v.count_used == len(window)
    first = frame[starts == rmse[0].event_timestamp]
    assert rmse[0].count_unused == int(first.Y.isna().sum())
    for name, reference in (
        ("MAE", metrics.mean_absolute_error),
        ("MAPE", metrics.mean_absolute_percentage_error),
        ("MSE", metrics.mean_squared_error),
    ):
        for v in _pick(values, "PERFORMANCE", name):
            window = frame[starts == v.event_timestamp].dropna(subset=["Y"])
            assert v.metric_value == pytest.approx(reference(window.Y, window.PRED), rel=1e-12)
    # No baseline: no drift rows at all.
    assert not [v for v in values if v.kind == "DRIFT"]


def test_categorical_drift_uses_category_frequencies() -> None:
    frame = pd.DataFrame(
        {
            "ID": range(6),
            "TS": [T0] * 6,
            "COLOUR": ["red", "red", "red", "blue", "green", None],
            "P": [1, 0, 1, 0, 1, 0],
            "Y": [1, 0, 1, 0, 0, 0],
        }
    )
    baseline = pd.DataFrame({"COLOUR": ["red", "blue", "blue", "blue"], "P": [1, 0, 0, 0], "Y": [1, 0, 0, 0]})
    cols = MonitorColumns(
        timestamp="TS", ids=["ID"], prediction_class=["P"], actual_class=["Y"], features=["COLOUR"]
    )
    values = compute_metrics(frame, baseline, cols, "TABULAR_BINARY_CLASSIFICATION", timedelta(days=1))
    (js,) = _pick(values, "DRIFT", "JENSEN_SHANNON", "COLOUR")
    # Categories in order blue, green, red: window 1/1/3, baseline 3/0/1.
    assert js.metric_value == pytest.approx(float(jensenshannon([1, 1, 3], [3, 0, 1], base=2)), rel=1e-12)
    assert (js.count_used, js.count_unused, js.baseline_count_used, js.baseline_count_unused) == (5, 1, 4, 0)
    (mean_diff,) = _pick(values, "DRIFT", "DIFFERENCE_OF_MEANS", "COLOUR")
    assert mean_diff.metric_value is None  # text has no mean
    (accuracy,) = _pick(values, "PERFORMANCE", "CLASSIFICATION_ACCURACY")
    assert accuracy.metric_value == pytest.approx(5 / 6)
    (auc,) = _pick(values, "PERFORMANCE", "ROC_AUC")
    assert auc.metric_value is None  # no prediction score column
    (nulls,) = _pick(values, "STAT", "COUNT_NULL", "COLOUR")
    assert nulls.metric_value == 1.0


def test_intervals() -> None:
    assert refresh_interval("1 hour") == timedelta(hours=1)
    assert refresh_interval("30 minutes") == timedelta(minutes=30)
    assert aggregation_window("7 days") == timedelta(days=7)
    assert canonical_window("1 day") == canonical_window(" 1 DAYS ") == "1 DAY"
    with pytest.raises(InvalidArgumentError, match="model monitors aggregate over days"):
        aggregation_window("1 hour")
    with pytest.raises(InvalidArgumentError, match="Invalid refresh_interval 'soon'"):
        refresh_interval("soon")
