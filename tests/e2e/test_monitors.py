"""Model monitors end to end, on SQLite (embedded) and on Postgres (a `runbatch server`).

Six daily windows of logged predictions with a KNOWN feature drift on day 2 and a KNOWN accuracy
drop on day 4: the metrics find exactly those windows, with the values numpy, scipy and
scikit-learn give on the same rows, through the SDK, the SQL table functions and the REST series.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import wasserstein_distance
from sklearn import metrics
from sklearn.linear_model import LogisticRegression

from migrations import upgrade_to_head
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.model.task import Task
from runbatch.ml.monitoring.entities.model_monitor_config import ModelMonitorConfig, ModelMonitorSourceConfig
from runbatch.ml.monitoring.model_monitor import ModelMonitor
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from server.db.engine import make_engine
from tests.services import PostgresDatabase, ServerProcess

DAYS = 6
ROWS = 200
DRIFT_DAY = 2
ACCURACY_DROP_DAY = 4
NULL_DAY = 1
START = (datetime.now(UTC) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Session, str | None, dict[str, str]]]:
    """(session, REST base URL, auth header): the embedded control plane (SQLite) or a server on Postgres."""
    if request.param == "sqlite":
        yield request.getfixturevalue("embedded_session"), None, {}
        return
    pg = PostgresDatabase()
    engine = make_engine(pg.url)
    upgrade_to_head(engine)
    engine.dispose()
    server = ServerProcess(tmp_path_factory.mktemp("pg-server"), env={"RUNBATCH_DATABASE_URL": pg.url})
    try:
        yield server.session(), server.url, server.auth
    finally:
        server.stop()
        pg.drop()


def _features(rng: np.random.Generator, rows: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame({"X1": rng.normal(shift, 1.0, rows), "X2": rng.normal(0.0, 1.0, rows)})


def _source(model: LogisticRegression) -> pd.DataFrame:
    rng = np.random.default_rng(7)
    frames = []
    for day in range(DAYS):
        X = _features(rng, ROWS, shift=3.0 if day == DRIFT_DAY else 0.0)
        truth = (X.X1 + X.X2 > 0).astype(np.int64).to_numpy()
        if day == ACCURACY_DROP_DAY:
            flip = rng.random(ROWS) < 0.5
            truth = np.where(flip, 1 - truth, truth)
        frame = X.assign(
            ID=np.arange(day * ROWS, (day + 1) * ROWS, dtype=np.int64),
            TS=[START + timedelta(days=day, minutes=5 * i) for i in range(ROWS)],
            SEG=np.where(np.arange(ROWS) % 2 == 0, "north", "south"),
            PRED_SCORE=model.predict_proba(X)[:, 1],
            PRED_CLASS=model.predict(X).astype(np.int64),
            ACTUAL=truth,
        )
        if day == NULL_DAY:
            frame.loc[frame.index[:7], "X2"] = np.nan
        frames.append(frame)
    out = pd.concat(frames, ignore_index=True)
    out["TS"] = pd.to_datetime(out["TS"]).dt.tz_localize(None)
    return out[["ID", "TS", "SEG", "X1", "X2", "PRED_SCORE", "PRED_CLASS", "ACTUAL"]]


def _js(a: np.ndarray, b: np.ndarray) -> float:
    edges = np.linspace(min(a.min(), b.min()), max(a.max(), b.max()), 11)
    return float(jensenshannon(np.histogram(a, edges)[0], np.histogram(b, edges)[0], base=2))


@pytest.fixture(scope="module")
def monitored(backend: tuple[Session, str | None, dict[str, str]]) -> Iterator[dict[str, Any]]:
    session, url, auth = backend
    db = f"T_{uuid.uuid4().hex[:10].upper()}"
    session.sql(f"CREATE DATABASE {db}").collect()
    rng = np.random.default_rng(0)
    train = _features(rng, 500)
    model = LogisticRegression().fit(train, (train.X1 + train.X2 > 0).astype(int))
    reg = Registry(session, database_name=db)
    mv = reg.log_model(
        model,
        model_name="CHURN",
        version_name="V1",
        sample_input_data=train.head(10),
        task=Task.TABULAR_BINARY_CLASSIFICATION,
    )
    source = _source(model)
    session.create_dataframe(source).write.mode("overwrite").save_as_table("PREDS")
    baseline = _features(np.random.default_rng(1), 400)
    baseline = baseline.assign(
        PRED_SCORE=model.predict_proba(baseline[["X1", "X2"]])[:, 1],
        PRED_CLASS=model.predict(baseline[["X1", "X2"]]).astype(np.int64),
        ACTUAL=(baseline.X1 + baseline.X2 > 0).astype(np.int64),
    )
    session.create_dataframe(baseline).write.mode("overwrite").save_as_table("BASELINE")
    monitor = reg.add_monitor(
        "CHURN_MONITOR",
        source_config=ModelMonitorSourceConfig(
            source="PREDS",
            timestamp_column="TS",
            id_columns=["ID"],
            prediction_score_columns=["PRED_SCORE"],
            prediction_class_columns=["PRED_CLASS"],
            actual_class_columns=["ACTUAL"],
            segment_columns=["SEG"],
            baseline="BASELINE",
        ),
        model_monitor_config=ModelMonitorConfig(
            model_version=mv,
            model_function_name="predict",
            background_compute_warehouse_name="WH",
            refresh_interval="1 second",
            aggregation_window="1 day",
        ),
    )
    result = monitor.refresh()
    assert result.windows == DAYS
    yield {
        "session": session,
        "db": db,
        "reg": reg,
        "mv": mv,
        "monitor": monitor,
        "source": source,
        "baseline": baseline,
        "url": url,
        "auth": auth,
    }
    # A 1-second refresh interval must not go on loading the shared control plane after this module.
    reg.delete_monitor("CHURN_MONITOR")


def _sql(m: dict[str, Any], text: str) -> pd.DataFrame:
    session: Session = m["session"]
    session.use_database(m["db"])
    return session.sql(text).to_pandas()


def _window(source: pd.DataFrame, day: int) -> pd.DataFrame:
    return source.iloc[day * ROWS : (day + 1) * ROWS]


def test_drift_finds_exactly_the_drifted_window(monitored: dict[str, Any]) -> None:
    source, baseline = monitored["source"], monitored["baseline"]
    end = (START + timedelta(days=DAYS)).strftime("%Y-%m-%d %H:%M:%S")
    start = START.strftime("%Y-%m-%d %H:%M:%S")
    out = _sql(
        monitored,
        "SELECT * FROM TABLE(MODEL_MONITOR_DRIFT_METRIC('CHURN_MONITOR', 'JENSEN_SHANNON', 'X1', '1 DAY', "
        f"TO_TIMESTAMP_NTZ('{start}'), TO_TIMESTAMP_NTZ('{end}')))",
    )
    assert list(out.columns) == [
        "EVENT_TIMESTAMP",
        "METRIC_VALUE",
        "BASELINE_COUNT_USED",
        "BASELINE_COUNT_UNUSED",
        "COUNT_USED",
        "COUNT_UNUSED",
        "METRIC_NAME",
        "COLUMN_NAME",
        "SEGMENT_COLUMN",
        "SEGMENT_VALUE",
    ]
    assert [pd.Timestamp(t).to_pydatetime() for t in out.EVENT_TIMESTAMP] == [
        (START + timedelta(days=d)).replace(tzinfo=None) for d in range(DAYS)
    ]
    expected = [_js(_window(source, d).X1.to_numpy(), baseline.X1.to_numpy()) for d in range(DAYS)]
    np.testing.assert_allclose(out.METRIC_VALUE.to_numpy(), expected, rtol=1e-12)
    drifted = [d for d, v in enumerate(out.METRIC_VALUE) if v > 0.5]
    assert drifted == [DRIFT_DAY]
    assert out.COUNT_USED.tolist() == [ROWS] * DAYS
    assert out.BASELINE_COUNT_USED.tolist() == [len(baseline)] * DAYS
    assert set(out.METRIC_NAME) == {"JENSEN_SHANNON"} and set(out.COLUMN_NAME) == {"X1"}

    for metric, reference in (
        ("WASSERSTEIN", lambda a, b: wasserstein_distance(a, b)),
        ("DIFFERENCE_OF_MEANS", lambda a, b: a.mean() - b.mean()),
    ):
        values = _sql(
            monitored,
            f"SELECT METRIC_VALUE FROM TABLE(MODEL_MONITOR_DRIFT_METRIC('CHURN_MONITOR', '{metric}', 'X1', "
            f"'1 DAY', '{start}'::TIMESTAMP_NTZ, '{end}'::TIMESTAMP_NTZ)) ORDER BY EVENT_TIMESTAMP",
        ).METRIC_VALUE.to_numpy()
        want = [reference(_window(source, d).X1.to_numpy(), baseline.X1.to_numpy()) for d in range(DAYS)]  # type: ignore[no-untyped-call]
        np.testing.assert_allclose(values, want, rtol=1e-12)
        assert int(np.argmax(np.abs(values))) == DRIFT_DAY
    # Arguments are any constant expression; the lower bound is inclusive, the upper exclusive.
    recent = _sql(
        monitored,
        "SELECT COUNT(*) AS N FROM TABLE(MODEL_MONITOR_DRIFT_METRIC('CHURN_MONITOR', 'JENSEN_SHANNON', 'X1', "
        f"'1 DAY', DATEADD(DAY, -60, CURRENT_TIMESTAMP()), DATEADD(DAY, {DRIFT_DAY}, '{start}'::TIMESTAMP_NTZ)))",
    )
    assert recent.N.tolist() == [DRIFT_DAY]
    # X2 never drifted.
    x2 = _sql(
        monitored,
        "SELECT METRIC_VALUE FROM TABLE(MODEL_MONITOR_DRIFT_METRIC('CHURN_MONITOR', 'JENSEN_SHANNON', 'X2', "
        f"NULL, '{start}'::TIMESTAMP_NTZ, '{end}'::TIMESTAMP_NTZ))",
    )
    assert (x2.METRIC_VALUE < 0.2).all()


def test_performance_finds_exactly_the_accuracy_drop(monitored: dict[str, Any]) -> None:
    source = monitored["source"]
    start = START.strftime("%Y-%m-%d %H:%M:%S")
    out = _sql(
        monitored,
        "SELECT * FROM TABLE(MODEL_MONITOR_PERFORMANCE_METRIC('CHURN_MONITOR', 'CLASSIFICATION_ACCURACY', "
        f"'1 DAY', '{start}'::TIMESTAMP_NTZ, NULL)) ORDER BY EVENT_TIMESTAMP",
    )
    assert list(out.columns) == [
        "EVENT_TIMESTAMP",
        "METRIC_VALUE",
        "COUNT_USED",
        "COUNT_UNUSED",
        "METRIC_NAME",
        "SEGMENT_COLUMN",
        "SEGMENT_VALUE",
    ]
    expected = [
        metrics.accuracy_score(_window(source, d).ACTUAL, _window(source, d).PRED_CLASS) for d in range(DAYS)
    ]
    np.testing.assert_allclose(out.METRIC_VALUE.to_numpy(), expected, rtol=1e-12)
    assert [d for d, v in enumerate(out.METRIC_VALUE) if v < 0.8] == [ACCURACY_DROP_DAY]
    for metric, reference in (
        ("PRECISION", lambda w: metrics.precision_score(w.ACTUAL, w.PRED_CLASS)),
        ("RECALL", lambda w: metrics.recall_score(w.ACTUAL, w.PRED_CLASS)),
        ("F1_SCORE", lambda w: metrics.f1_score(w.ACTUAL, w.PRED_CLASS)),
        ("ROC_AUC", lambda w: metrics.roc_auc_score(w.ACTUAL, w.PRED_SCORE)),
    ):
        values = _sql(
            monitored,
            f"SELECT METRIC_VALUE FROM TABLE(MODEL_MONITOR_PERFORMANCE_METRIC('CHURN_MONITOR', '{metric}', "
            f"'1 DAY', '{start}'::TIMESTAMP_NTZ)) ORDER BY EVENT_TIMESTAMP",
        ).METRIC_VALUE.to_numpy()
        want = [reference(_window(source, d)) for d in range(DAYS)]  # type: ignore[no-untyped-call]
        np.testing.assert_allclose(values, want, rtol=1e-12)
    # One segment: the even rows of each window.
    north = _sql(
        monitored,
        "SELECT METRIC_VALUE, SEGMENT_COLUMN, SEGMENT_VALUE FROM TABLE(MODEL_MONITOR_PERFORMANCE_METRIC("
        f"'CHURN_MONITOR', 'CLASSIFICATION_ACCURACY', '1 DAY', '{start}'::TIMESTAMP_NTZ, NULL, "
        """'{"SEGMENTS": [{"column": "SEG", "value": "north"}]}'))""",
    )
    want = []
    for d in range(DAYS):
        w = _window(source, d)
        w = w[w.SEG == "north"]
        want.append(metrics.accuracy_score(w.ACTUAL, w.PRED_CLASS))
    np.testing.assert_allclose(north.METRIC_VALUE.to_numpy(), want, rtol=1e-12)
    assert set(north.SEGMENT_COLUMN) == {"SEG"} and set(north.SEGMENT_VALUE) == {"north"}


def test_counts_and_nulls(monitored: dict[str, Any]) -> None:
    start = START.strftime("%Y-%m-%d %H:%M:%S")
    nulls = _sql(
        monitored,
        "SELECT METRIC_VALUE FROM TABLE(MODEL_MONITOR_STAT_METRIC('CHURN_MONITOR', 'COUNT_NULL', 'X2', '1 DAY', "
        f"'{start}'::TIMESTAMP_NTZ)) ORDER BY EVENT_TIMESTAMP",
    )
    assert nulls.METRIC_VALUE.tolist() == [7.0 if d == NULL_DAY else 0.0 for d in range(DAYS)]
    counts = _sql(
        monitored,
        "SELECT * FROM TABLE(MODEL_MONITOR_STAT_METRIC('CHURN_MONITOR', 'COUNT', 'X2', '1 DAY', "
        f"'{start}'::TIMESTAMP_NTZ)) ORDER BY EVENT_TIMESTAMP",
    )
    assert list(counts.columns) == [
        "EVENT_TIMESTAMP",
        "METRIC_VALUE",
        "METRIC_NAME",
        "COLUMN_NAME",
        "SEGMENT_COLUMN",
        "SEGMENT_VALUE",
    ]
    assert counts.METRIC_VALUE.tolist() == [ROWS - 7.0 if d == NULL_DAY else float(ROWS) for d in range(DAYS)]


def test_rest_series_matches_sql(monitored: dict[str, Any]) -> None:
    monitor: ModelMonitor = monitored["monitor"]
    series = monitor.metric_series("PERFORMANCE", "F1_SCORE")
    start = START.strftime("%Y-%m-%d %H:%M:%S")
    sql = _sql(
        monitored,
        "SELECT METRIC_VALUE FROM TABLE(MODEL_MONITOR_PERFORMANCE_METRIC('CHURN_MONITOR', 'F1_SCORE', '1 DAY', "
        f"'{start}'::TIMESTAMP_NTZ))",
    )
    assert [p.metric_value for p in series.points] == sql.METRIC_VALUE.tolist()
    assert [p.event_timestamp for p in series.points] == [START + timedelta(days=d) for d in range(DAYS)]
    if monitored["url"] is not None:
        response = httpx.get(
            f"{monitored['url']}/api/v1/databases/{monitored['db']}/schemas/PUBLIC/monitors/CHURN_MONITOR/metrics",
            params={"kind": "DRIFT", "metric": "JENSEN_SHANNON", "column": "X1"},
            headers=monitored["auth"],
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["granularity"] == "1 day"
        assert len(body["points"]) == DAYS
        unauthenticated = httpx.get(
            f"{monitored['url']}/api/v1/databases/{monitored['db']}/schemas/PUBLIC/monitors/CHURN_MONITOR"
        )
        assert unauthenticated.status_code == 401


def test_registry_listing_and_lookup(monitored: dict[str, Any]) -> None:
    reg: Registry = monitored["reg"]
    rows = reg.show_model_monitors()
    assert [r["name"] for r in rows] == ["CHURN_MONITOR"]
    row = rows[0]
    assert row["model_task"] == "TABULAR_BINARY_CLASSIFICATION"
    assert row["monitor_state"] == "ACTIVE"
    assert row["aggregation_window"] == "1 day"
    assert '"model_name": "CHURN"' in row["model"] and '"version_name": "V1"' in row["model"]
    assert reg.get_monitor(name="churn_monitor").name == "CHURN_MONITOR"
    assert reg.get_monitor(model_version=monitored["mv"]).name == "CHURN_MONITOR"
    with pytest.raises(ValueError, match="Unable to find model monitor 'NOPE'"):
        reg.get_monitor(name="NOPE")
    with pytest.raises(ValueError, match="Must provide either `name` or `model_version` to get ModelMonitor"):
        reg.get_monitor()  # type: ignore[call-overload]


def _last_refresh(m: dict[str, Any]) -> datetime | None:
    session: Session = m["session"]
    return session._conn.client.get_monitor(m["db"], "PUBLIC", "CHURN_MONITOR").last_refreshed_on


def _wait_for(condition: Any, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.3)
    raise AssertionError("condition not met in time")


def test_periodic_refresh_and_suspend(monitored: dict[str, Any]) -> None:
    """refresh_interval '1 second': maintenance refreshes; a suspended monitor never does."""
    session: Session = monitored["session"]
    monitor: ModelMonitor = monitored["monitor"]
    before = _last_refresh(monitored)
    _wait_for(lambda: _last_refresh(monitored) != before)  # periodic refreshes happen
    monitor.suspend()
    with pytest.raises(ValueError, match="is already suspended"):
        monitor.suspend()
    time.sleep(1.5)  # a refresh that had started before the suspension has ended
    frozen = _last_refresh(monitored)
    # A seventh day of rows arrives while suspended: nothing is computed for it.
    day7 = (
        monitored["source"]
        .iloc[:ROWS]
        .assign(
            ID=np.arange(DAYS * ROWS, (DAYS + 1) * ROWS, dtype=np.int64),
            TS=[(START + timedelta(days=DAYS, minutes=i)).replace(tzinfo=None) for i in range(ROWS)],
        )
    )
    session.use_database(monitored["db"])
    session.create_dataframe(day7).write.mode("append").save_as_table("PREDS")
    time.sleep(3)
    assert _last_refresh(monitored) == frozen
    assert len(monitor.metric_series("STAT", "COUNT", "X1").points) == DAYS
    with pytest.raises(ValueError, match="is suspended; resume it"):
        monitor.refresh()
    monitor.resume()
    _wait_for(lambda: len(monitor.metric_series("STAT", "COUNT", "X1").points) == DAYS + 1)


def test_bad_configurations_get_clear_errors(monitored: dict[str, Any]) -> None:
    reg: Registry = monitored["reg"]
    mv = monitored["mv"]

    def add(**source: Any) -> None:
        config = {
            "source": "PREDS",
            "timestamp_column": "TS",
            "id_columns": ["ID"],
            "prediction_class_columns": ["PRED_CLASS"],
            "actual_class_columns": ["ACTUAL"],
            **source,
        }
        reg.add_monitor(
            "OTHER",
            source_config=ModelMonitorSourceConfig(**config),
            model_monitor_config=ModelMonitorConfig(
                model_version=mv, model_function_name="predict", background_compute_warehouse_name="WH"
            ),
        )

    with pytest.raises(ValueError, match=r"Timestamp column WHEN does not exist in source\."):
        add(timestamp_column="WHEN")
    with pytest.raises(ValueError, match=r"Segment column\(s\): \['REGION'\] do not exist in source\."):
        add(segment_columns=["REGION"])
    with pytest.raises(ValueError, match="MISSING"):
        add(source="MISSING")
    with pytest.raises(
        ValueError, match="Function with name explain does not exist in the given model version"
    ):
        reg.add_monitor(
            "OTHER",
            source_config=ModelMonitorSourceConfig(source="PREDS", timestamp_column="TS", id_columns=["ID"]),
            model_monitor_config=ModelMonitorConfig(
                model_version=mv, model_function_name="explain", background_compute_warehouse_name="WH"
            ),
        )
    with pytest.raises(ValueError, match="stores metrics per its aggregation window"):
        _sql(
            monitored,
            "SELECT * FROM TABLE(MODEL_MONITOR_STAT_METRIC('CHURN_MONITOR', 'COUNT', 'X1', '1 WEEK'))",
        )
    with pytest.raises(ValueError, match="use one of RMSE|use one of ROC_AUC"):
        _sql(monitored, "SELECT * FROM TABLE(MODEL_MONITOR_PERFORMANCE_METRIC('CHURN_MONITOR', 'RMSE'))")
    disabled = Registry(
        monitored["session"], database_name=monitored["db"], options={"enable_monitoring": False}
    )
    with pytest.raises(ValueError, match="Must enable monitoring to use this method"):
        disabled.show_model_monitors()


def test_delete_monitor(monitored: dict[str, Any], tmp_path: Path) -> None:
    reg: Registry = monitored["reg"]
    reg.add_monitor(
        "SHORT_LIVED",
        source_config=ModelMonitorSourceConfig(
            source="PREDS",
            timestamp_column="TS",
            id_columns=["ID"],
            prediction_class_columns=["PRED_CLASS"],
            actual_class_columns=["ACTUAL"],
        ),
        model_monitor_config=ModelMonitorConfig(
            model_version=monitored["mv"],
            model_function_name="predict",
            background_compute_warehouse_name="WH",
        ),
    )
    assert sorted(r["name"] for r in reg.show_model_monitors()) == ["CHURN_MONITOR", "SHORT_LIVED"]
    reg.delete_monitor("SHORT_LIVED")
    assert [r["name"] for r in reg.show_model_monitors()] == ["CHURN_MONITOR"]
    with pytest.raises(ValueError, match="Unable to find model monitor"):
        reg.delete_monitor("SHORT_LIVED")


def test_a_batch_jobs_output_location_feeds_a_monitor(embedded_session: Session, embedded_db: str) -> None:
    """run_batch writes scored rows (inputs pass through) to a stage; the monitor reads that location."""
    rng = np.random.default_rng(3)
    train = _features(rng, 300)
    model = LogisticRegression().fit(train, (train.X1 + train.X2 > 0).astype(int))
    reg = Registry(embedded_session, database_name=embedded_db)
    mv = reg.log_model(
        model, model_name="SCORER", sample_input_data=train.head(10), task=Task.TABULAR_BINARY_CLASSIFICATION
    )
    batch = _features(rng, 90).assign(
        ID=np.arange(90, dtype=np.int64),
        TS=[(START + timedelta(days=i // 30, minutes=i % 30)).replace(tzinfo=None) for i in range(90)],
    )
    batch["ACTUAL"] = (batch.X1 > 0).astype(np.int64)
    job = mv.run_batch(
        embedded_session.create_dataframe(batch),
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec=OutputSpec(stage_location="@DATA/scored/"),
        job_spec=JobSpec(function_name="predict"),
    )
    assert job.wait(180) == "DONE", job.get_logs()
    monitor = reg.add_monitor(
        "SCORED",
        source_config=ModelMonitorSourceConfig(
            source="@DATA/scored/",
            timestamp_column="TS",
            id_columns=["ID"],
            prediction_class_columns=["output_feature_0"],
            actual_class_columns=["ACTUAL"],
        ),
        model_monitor_config=ModelMonitorConfig(
            model_version=mv, model_function_name="predict", background_compute_warehouse_name="WH"
        ),
    )
    monitor.refresh()
    accuracy = monitor.metric_series("PERFORMANCE", "CLASSIFICATION_ACCURACY")
    predicted = model.predict(batch[["X1", "X2"]])
    assert [p.event_timestamp for p in accuracy.points] == [START + timedelta(days=d) for d in range(3)]
    assert [p.metric_value for p in accuracy.points] == [
        metrics.accuracy_score(batch.ACTUAL[d * 30 : (d + 1) * 30], predicted[d * 30 : (d + 1) * 30])
        for d in range(3)
    ]
    assert [p.count_used for p in accuracy.points] == [30, 30, 30]
    reg.delete_monitor("SCORED")
