"""The web dashboard in headless Chromium (Debian's, driven by Playwright) against a real `runbatch server`
running real jobs: live progress without reloads, the cancel button, sign in and out, every page, what a
user without privileges sees, and a model's monitors charted on its page."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score

from runbatch.core import Root
from runbatch.core.task import Cron
from runbatch.core.task.dagv1 import DAG, DAGOperation, DAGTask
from runbatch.errors import NotFoundError
from runbatch.ml.jobs import MLJob
from runbatch.ml.model import ModelVersion
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.model.task import Task
from runbatch.ml.monitoring.entities.model_monitor_config import ModelMonitorConfig, ModelMonitorSourceConfig
from runbatch.ml.monitoring.model_monitor import ModelMonitor
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Sleeper, SlowDoubler
from tests.services import ServerProcess

# The module's scene (a model, a finished job, a DAG run) is built inside its first test's time.
pytestmark = pytest.mark.timeout(600)

CHROMIUM = "/usr/bin/chromium"
POOL = "SYSTEM_COMPUTE_POOL_CPU"
FEATURES = ["A", "B", "C", "D"]
# The monitor's source: daily windows of logged predictions, feature A shifted on one day.
MONITOR_DAYS = 6
MONITOR_ROWS = 150
MONITOR_DRIFT_DAY = 3
MONITOR_NOISY_DAY = 4  # a third of its actuals are flipped: the accuracy drops


@dataclass
class Scene:
    """A database of the test module's own with a model, a finished job and a DAG with one run."""

    session: Session
    database: str
    model: ModelVersion
    job: MLJob[object]
    classifier: LogisticRegression


def features(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(rows, 4)), columns=FEATURES)
    frame.insert(0, "ID", np.arange(rows, dtype=np.int64))
    return frame


def build_scene(session: Session, database: str) -> Scene:
    """What the pages show: a logged sklearn model with metrics, a DONE job of it, a DAG with a run."""
    session.sql(f"CREATE DATABASE {database}").collect()
    session.sql("CREATE STAGE DATA").collect()
    data = features(2_000)
    clf = LogisticRegression().fit(data[FEATURES], (data.A + data.B > 0).astype(int))
    mv = Registry(session).log_model(
        clf,
        model_name="CHURN_CLASSIFIER",
        version_name="V1",
        sample_input_data=data[FEATURES].head(20),
        metrics={"accuracy": 0.9875, "training_rows": 2000},
        comment="Logistic regression on four features",
        task=Task.TABULAR_BINARY_CLASSIFICATION,  # a model monitor needs it
    )
    job = mv.run_batch(
        session.create_dataframe(features(5_003, seed=1)),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location="@DATA/scores/"),
        job_spec=JobSpec(function_name="predict_proba", replicas=2, max_batch_rows=1_000),
    )
    assert job.wait(240) == "DONE", job.get_logs()
    with DAG("NIGHTLY_REPORT", schedule=Cron("0 2 * * *", "UTC"), comment="nightly") as dag:
        DAGTask("PREPARE", "SELECT 1") >> DAGTask("PUBLISH", "SELECT 2")
    op = DAGOperation(Root(session).databases[database].schemas["PUBLIC"])
    op.deploy(dag)
    op.run(dag)
    deadline = time.monotonic() + 120
    while not any(r.state == "SUCCEEDED" for r in op.get_complete_dag_runs(dag, error_only=False)):
        assert time.monotonic() < deadline, "the DAG's run did not succeed"
        time.sleep(0.5)
    return Scene(session=session, database=database, model=mv, job=job, classifier=clf)


def monitor_source(clf: LogisticRegression, start: datetime) -> pd.DataFrame:
    """MONITOR_DAYS daily windows of MONITOR_ROWS predictions each, feature A shifted by 3 on MONITOR_DRIFT_DAY;
    5% of the actuals disagree with the rule the model learned, a third on MONITOR_NOISY_DAY."""
    rng = np.random.default_rng(11)
    frames = []
    for day in range(MONITOR_DAYS):
        x = pd.DataFrame(rng.normal(size=(MONITOR_ROWS, 4)), columns=FEATURES)
        if day == MONITOR_DRIFT_DAY:
            x["A"] += 3.0
        rule = (x.A + x.B > 0).to_numpy()
        flipped = rng.random(MONITOR_ROWS) < (1 / 3 if day == MONITOR_NOISY_DAY else 0.05)
        frames.append(
            x.assign(
                ID=np.arange(day * MONITOR_ROWS, (day + 1) * MONITOR_ROWS, dtype=np.int64),
                TS=[start + timedelta(days=day, minutes=5 * i) for i in range(MONITOR_ROWS)],
                PRED_SCORE=clf.predict_proba(x[FEATURES])[:, 1],
                PRED_CLASS=clf.predict(x[FEATURES]).astype(np.int64),
                ACTUAL=np.where(flipped, ~rule, rule).astype(np.int64),
            )
        )
    return pd.concat(frames, ignore_index=True)


def add_monitor(scene: Scene) -> tuple[ModelMonitor, pd.DataFrame]:
    """CHURN_MONITOR on the scene's model: a refreshed monitor of MONITOR_DAYS daily windows and its source."""
    session = scene.session
    session.use_database(scene.database)
    start = (datetime.now(UTC) - timedelta(days=10)).replace(hour=0, minute=0, second=0, microsecond=0)
    source = monitor_source(scene.classifier, start.replace(tzinfo=None))
    session.create_dataframe(source).write.mode("overwrite").save_as_table("MONITOR_PREDS")
    baseline = features(400, seed=2)[FEATURES]
    baseline = baseline.assign(
        PRED_SCORE=scene.classifier.predict_proba(baseline)[:, 1],
        PRED_CLASS=scene.classifier.predict(baseline).astype(np.int64),
        ACTUAL=(baseline.A + baseline.B > 0).astype(np.int64),
    )
    session.create_dataframe(baseline).write.mode("overwrite").save_as_table("MONITOR_BASELINE")
    monitor = Registry(session, database_name=scene.database, schema_name="PUBLIC").add_monitor(
        "CHURN_MONITOR",
        source_config=ModelMonitorSourceConfig(
            source="MONITOR_PREDS",
            timestamp_column="TS",
            id_columns=["ID"],
            prediction_score_columns=["PRED_SCORE"],
            prediction_class_columns=["PRED_CLASS"],
            actual_class_columns=["ACTUAL"],
            baseline="MONITOR_BASELINE",
        ),
        model_monitor_config=ModelMonitorConfig(
            model_version=scene.model,
            model_function_name="predict",
            background_compute_warehouse_name="WH",
            refresh_interval="1 hour",  # refreshed below, and not again while the tests run
            aggregation_window="1 day",
        ),
    )
    assert monitor.refresh().windows == MONITOR_DAYS
    return monitor, source


def slow_job(scene: Scene, model: type[Sleeper] | type[SlowDoubler], rows: int, batch: int) -> MLJob[object]:
    """A job whose runtime sleeps 0.3 s per batch: slow enough to watch and to cancel."""
    session = scene.session
    mv = Registry(session).log_model(
        model(),
        model_name=f"SLOW_{uuid.uuid4().hex[:6].upper()}",
        sample_input_data=pd.DataFrame({"X": [1.0]}),
    )
    return mv.run_batch(
        session.create_dataframe(pd.DataFrame({"X": np.arange(rows, dtype=np.float64)})),
        compute_pool=POOL,
        output_spec=OutputSpec(stage_location=f"@DATA/slow_{uuid.uuid4().hex[:6]}/"),
        job_spec=JobSpec(replicas=1, max_batch_rows=batch),
    )


def sign_in(page: Page, token: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/#/signin$"))
    page.fill("#token", token)
    page.click("text=Sign in with token")
    expect(page.get_by_test_id("user-name")).to_be_visible()


def sign_in_with_password(page: Page, username: str, password: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/#/signin$"))
    page.fill("#username", username)
    page.fill("#password", password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("user-name")).to_have_text(username)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/browser to install Debian's chromium.")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def scene(server_process: ServerProcess) -> Scene:
    return build_scene(server_process.session(), f"T_{uuid.uuid4().hex[:10].upper()}")


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def page(browser: Browser, server_process: ServerProcess, console_errors: list[str]) -> Iterator[Page]:
    context = browser.new_context(base_url=server_process.url, viewport={"width": 1400, "height": 900})
    opened = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console_errors.append(message.text)

    opened.on("console", on_console)
    opened.on("pageerror", lambda exc: console_errors.append(f"uncaught: {exc}"))
    yield opened
    context.close()


def test_the_shell_is_public_and_the_data_is_not(server_process: ServerProcess) -> None:
    shell = httpx.get(f"{server_process.url}/")
    assert shell.status_code == 200
    assert shell.headers["content-type"] == "text/html; charset=utf-8"
    assert "default-src 'self'" in shell.headers["content-security-policy"]
    assert '<script type="module" src="/dashboard/js/app.js"></script>' in shell.text
    assert httpx.get(f"{server_process.url}/dashboard/vendor/uPlot.esm.js").status_code == 200
    answer = httpx.get(f"{server_process.url}/api/v1/dashboard/running-shards")
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"


def test_sign_in_with_a_token_and_sign_out(page: Page, server_process: ServerProcess) -> None:
    page.goto("/#/jobs")
    expect(page).to_have_url(f"{server_process.url}/#/signin")
    page.fill("#token", "rb_not_a_real_token")
    page.click("text=Sign in with token")
    expect(page.get_by_role("alert")).to_have_text(
        "This token is not valid: it may be mistyped, expired or revoked."
    )
    assert page.evaluate("sessionStorage.getItem('runbatch.token')") is None

    page.fill("#token", server_process.token)
    page.click("text=Sign in with token")
    expect(page).to_have_url(f"{server_process.url}/#/jobs")  # where the visit began
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('runbatch.token')") == server_process.token

    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(f"{server_process.url}/#/signin")
    assert page.evaluate("sessionStorage.getItem('runbatch.token')") is None
    page.goto("/#/models")
    expect(page).to_have_url(f"{server_process.url}/#/signin")
    # Signing out forgets a pasted API token but does not revoke it: the user's scripts still use it.
    assert httpx.get(f"{server_process.url}/api/v1/me", headers=server_process.auth).status_code == 200


def test_sign_in_with_a_password_and_sign_out_revokes_its_token(
    page: Page, server_process: ServerProcess
) -> None:
    name = f"ANALYST_{uuid.uuid4().hex[:6].upper()}"
    created = httpx.post(
        f"{server_process.url}/api/v1/users",
        json={"name": name, "password": "correct horse battery"},
        headers=server_process.auth,
    )
    assert created.status_code == 201, created.text
    page.goto("/")
    page.fill("#username", name)
    page.fill("#password", "wrong password!")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("Incorrect username or password was specified.")
    assert page.evaluate("sessionStorage.getItem('runbatch.token')") is None
    page.fill("#password", "correct horse battery")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("user-name")).to_have_text(name)
    token = page.evaluate("sessionStorage.getItem('runbatch.token')")
    me = httpx.get(f"{server_process.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["name"] == name

    page.get_by_test_id("sign-out").click()
    expect(page).to_have_url(f"{server_process.url}/#/signin")
    assert page.evaluate("sessionStorage.getItem('runbatch.token')") is None
    revoked = httpx.get(f"{server_process.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 401


def test_a_rejected_token_sends_the_page_back_to_sign_in(page: Page, server_process: ServerProcess) -> None:
    sign_in(page, server_process.token)
    # As when a token expires or is revoked while the page is open: the next poll gets a 401.
    page.evaluate("sessionStorage.setItem('runbatch.token', 'rb_revoked')")
    expect(page).to_have_url(f"{server_process.url}/#/signin", timeout=10_000)
    assert page.evaluate("sessionStorage.getItem('runbatch.token')") is None


def test_the_job_list_shows_progress_rising_to_done_without_a_reload(
    page: Page, scene: Scene, server_process: ServerProcess
) -> None:
    sign_in(page, server_process.token)
    page.evaluate("window.__sameDocument = true")
    job = slow_job(scene, SlowDoubler, rows=1_200, batch=40)  # 30 batches, about 9 s of work
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row).to_be_visible(timeout=10_000)
    seen: list[int] = []
    deadline = time.monotonic() + 180
    while row.locator("[data-status]").inner_text() != "DONE":
        assert time.monotonic() < deadline, job.get_logs()
        seen.append(int(row.locator(".progress-cell").get_attribute("data-rows-done") or "0"))
        time.sleep(0.2)
    assert page.evaluate("window.__sameDocument") is True
    assert seen == sorted(seen)
    assert any(0 < rows < 1_200 for rows in seen), seen  # the bar moved while the job ran
    expect(row.locator(".progress-text")).to_have_text("1,200 / 1,200 rows1/1 shards")
    assert row.locator(".progress-cell").get_attribute("data-rows-done") == "1200"
    assert job.status == "DONE"


def test_the_cancel_button_cancels_a_running_job(
    page: Page, scene: Scene, server_process: ServerProcess
) -> None:
    job = slow_job(scene, Sleeper, rows=3_000, batch=5)
    deadline = time.monotonic() + 120
    while job.info.rows_done == 0:
        assert time.monotonic() < deadline, job.get_logs()
        time.sleep(0.2)
    sign_in(page, server_process.token)
    page.goto(f"/#/jobs/{scene.database}/PUBLIC/{job.name}")
    expect(page.locator("h1 [data-status]")).to_have_text("RUNNING")
    cancel = page.get_by_test_id("cancel-job")

    cancel.click()
    expect(page.get_by_role("dialog")).to_contain_text(f"Cancel job {job.name}?")
    page.get_by_role("button", name="Keep running").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    time.sleep(1.5)
    assert job.status == "RUNNING"

    cancel.click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel job").click()
    assert job.wait(60) == "CANCELLED"
    assert job.info.message == "Job was cancelled."
    expect(page.locator("h1 [data-status]")).to_have_text("CANCELLED")
    expect(cancel).to_be_hidden()


def test_every_page_renders_with_data_and_no_console_errors(
    page: Page, scene: Scene, server_process: ServerProcess, console_errors: list[str]
) -> None:
    db, job = scene.database, scene.job
    sign_in(page, server_process.token)

    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row.locator(".progress-text")).to_have_text("5,003 / 5,003 rows2/2 shards")
    expect(row.locator("td").nth(5)).to_have_text(POOL)
    expect(row.locator("td").nth(6)).to_have_text("admin")
    page.get_by_test_id("search").fill(job.name[-12:].lower())  # a substring, in any case
    expect(page.locator("tr[data-job]")).to_have_count(1)
    expect(row).to_be_visible()
    page.get_by_test_id("search").fill("no-such-job")
    expect(page.locator("td.empty")).to_have_text("No job matches these filters.")
    page.get_by_test_id("search").fill("")
    page.get_by_test_id("status-filter").select_option("CANCELLED")
    expect(page.get_by_text("with status CANCELLED")).to_be_visible()
    expect(row).to_have_count(0)
    page.get_by_test_id("status-filter").select_option("DONE")
    expect(row).to_be_visible()

    page.goto(f"/#/jobs/{db}/PUBLIC/{job.name}")
    expect(page.locator("h1 [data-status]")).to_have_text("DONE")
    expect(page.get_by_test_id("cancel-job")).to_be_hidden()
    shards = page.locator("section:has(h2:text-is('Shards')) tbody tr")
    expect(shards).to_have_count(2)
    expect(shards.nth(0).locator(".progress-text")).to_have_text("2,502 / 2,502")
    expect(shards.nth(1).locator(".progress-text")).to_have_text("2,501 / 2,501")
    expect(page.get_by_test_id("success-marker")).to_have_text("_SUCCESS")
    output = page.get_by_test_id("output").locator("tbody td:first-child")
    expect(output).to_have_text(
        ["_SUCCESS", "_manifest.json", "part-00000-00000.parquet", "part-00001-00000.parquet"]
    )
    expect(page.get_by_test_id("log-tail")).to_contain_text("[0.1]")
    expect(page.get_by_test_id("throughput-chart").locator("canvas")).to_have_count(1)
    expect(page.get_by_text("Reconstructed from each shard's start, end and rows.")).to_be_visible()
    with page.expect_download() as download:
        page.get_by_test_id("output").get_by_role("button", name="Download").first.click()
    assert download.value.suggested_filename == "_SUCCESS"

    page.goto("/#/models")
    model_row = page.locator(f'tr[data-model="{db}.PUBLIC.CHURN_CLASSIFIER"]')
    expect(model_row.locator("td").nth(1)).to_have_text("sklearn")
    expect(model_row.locator("td").nth(2)).to_have_text("V1")
    model_row.get_by_role("link", name="CHURN_CLASSIFIER").click()
    version = page.locator('[data-version="V1"]')
    expect(version.locator("h2")).to_contain_text("DEFAULT")
    expect(version.locator("tr:has-text('accuracy') td").nth(1)).to_have_text("0.9875")
    functions = version.locator("table:has(th:text-is('Function')) tbody tr")
    expect(functions.locator("strong")).to_have_text(
        ["DECISION_FUNCTION", "PREDICT", "PREDICT_LOG_PROBA", "PREDICT_PROBA"]
    )
    expect(functions.nth(1).locator("td").nth(2)).to_have_text("A: DOUBLE, B: DOUBLE, C: DOUBLE, D: DOUBLE")

    page.goto("/#/pools")
    pool = page.locator(f'[data-pool="{POOL}"]')
    expect(pool.locator("h2")).to_contain_text(POOL)
    expect(pool.locator("h3").first).to_have_text("Workers")

    page.goto(f"/#/stages/{db}/PUBLIC/DATA")
    expect(page.locator('tr[data-entry="scores"] td').nth(2)).to_have_text("4 files")
    page.locator('tr[data-entry="scores"] a').click()
    expect(page.locator("tbody tr[data-entry]")).to_have_count(4)
    expect(page.locator('tr[data-entry="_SUCCESS"] td').nth(1)).to_have_text("0 B")

    page.goto("/#/dags")
    expect(page.get_by_role("link", name="NIGHTLY_REPORT")).to_be_visible()
    page.get_by_role("link", name="NIGHTLY_REPORT").click()
    expect(page.locator("section:has(h2:text-is('Tasks')) tbody tr")).to_have_count(2)
    expect(page.locator("section:has(h2:text-is('Runs')) tbody [data-status]").first).to_have_text(
        "SUCCEEDED"
    )

    assert console_errors == []


def test_a_user_without_usage_cannot_see_or_run_a_model(
    page: Page, scene: Scene, server_process: ServerProcess
) -> None:
    admin, db = scene.session, scene.database
    suffix = uuid.uuid4().hex[:6].upper()
    role, user, password = f"VIEWERS_{suffix}", f"VIEWER_{suffix}", "correct horse battery"
    granted, hidden = f"GRANTED_{suffix}", f"HIDDEN_{suffix}"
    data = features(200, seed=4)
    clf = LogisticRegression().fit(data[FEATURES], (data.A > 0).astype(int))
    registry = Registry(admin, database_name=db, schema_name="PUBLIC")
    for name in (granted, hidden):
        registry.log_model(clf, model_name=name, version_name="V1", sample_input_data=data[FEATURES].head(5))
    for sql in (
        f"CREATE ROLE {role}",
        f"CREATE USER {user} PASSWORD='{password}' DEFAULT_ROLE={role}",
        f"GRANT USAGE ON MODEL {db}.PUBLIC.{granted} TO ROLE {role}",
        f"GRANT USAGE ON COMPUTE POOL {POOL} TO ROLE {role}",
        f"GRANT WRITE ON STAGE {db}.PUBLIC.DATA TO ROLE {role}",
    ):
        admin.sql(sql).collect()
    login = httpx.post(f"{server_process.url}/api/v1/login", json={"username": user, "password": password})
    assert login.status_code == 200, login.text
    token = login.json()["token"]
    as_user = Session.builder.configs({"url": server_process.url, "token": token}).create()
    try:
        user_registry = Registry(as_user, database_name=db, schema_name="PUBLIC")
        job = (
            user_registry.get_model(granted)
            .version("V1")
            .run_batch(
                features(30, seed=5)[FEATURES],
                compute_pool=POOL,
                output_spec=OutputSpec(stage_location=f"@{db}.PUBLIC.DATA/{user.lower()}/"),
                job_spec=JobSpec(function_name="predict"),
            )
        )
        assert job.wait(120) == "DONE", job.get_logs()
        # The ungranted model does not exist for the user: the SDK cannot reach it to run it ...
        with pytest.raises(NotFoundError, match=rf"^Unable to find model {hidden}$"):
            user_registry.get_model(hidden).version("V1")
    finally:
        as_user.close()
    # ... nor can a job naming it.
    refused = httpx.post(
        f"{server_process.url}/api/v1/jobs",
        headers={"Authorization": f"Bearer {token}"},
        json={
            "model": {"database": db, "schema": "PUBLIC", "name": hidden, "version": "V1"},
            "compute_pool": POOL,
            "input": {"kind": "upload", "arrow_schema": ""},
            "output_spec": {"stage_location": f"@{db}.PUBLIC.DATA/{user.lower()}/"},
        },
    )
    assert refused.status_code == 404
    assert refused.json() == {
        "error": {"code": "not_found", "message": f"Unable to find model {db}.PUBLIC.{hidden}"}
    }

    sign_in_with_password(page, user, password)
    page.goto("/#/models")
    expect(page.locator("tr[data-model]")).to_have_count(1)
    expect(page.locator("tr[data-model]")).to_have_attribute("data-model", f"{db}.PUBLIC.{granted}")
    expect(page.get_by_text("1 model in")).to_be_visible()

    page.get_by_role("link", name=granted).click()
    expect(page.locator('[data-version="V1"] h2')).to_contain_text("DEFAULT")
    # Monitor routes are ACCOUNTADMIN's: a quiet note, not an error.
    expect(page.get_by_test_id("monitors-forbidden")).to_have_text(
        "Monitors need ACCOUNTADMIN: sign in as an administrator to see them."
    )
    expect(page.locator(".alert:visible")).to_have_count(0)

    page.goto(f"/#/models/{db}/PUBLIC/{hidden}")
    # Only what the address named: no version, owner, type or monitor of the model reaches the page.
    expect(page.locator(".page-body")).to_have_text(
        f"Model not foundThere is no model {db}.PUBLIC.{hidden}, or your roles hold no privilege on it."
        "All models"
    )
    expect(page.locator(".subtitle")).to_have_text(f"{db}.PUBLIC")
    expect(page.locator(".alert:visible")).to_have_count(0)

    page.goto("/#/jobs")
    expect(page.locator("tr[data-job]")).to_have_count(1)
    row = page.locator(f'tr[data-job="{job.id}"]')
    expect(row.locator("[data-status]")).to_have_text("DONE")
    expect(row.locator("td").nth(6)).to_have_text(user)


def test_the_model_page_charts_its_monitors(
    page: Page, scene: Scene, server_process: ServerProcess, console_errors: list[str]
) -> None:
    sign_in(page, server_process.token)
    page.goto(f"/#/models/{scene.database}/PUBLIC/CHURN_CLASSIFIER")
    card = page.get_by_test_id("monitors")
    expect(card.locator("td.empty")).to_have_text(
        "No monitors watch this model: Registry.add_monitor adds one."
    )

    _, source = add_monitor(scene)
    # The page polls: the monitor appears without a reload.
    row = card.locator('tr[data-monitor="CHURN_MONITOR"]')
    expect(row.locator("td")).to_have_text(
        [
            "CHURN_MONITOR",
            "V1",
            "ACTIVE",
            "1 day",
            "every 1 hour",
            re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$"),
        ],
        timeout=15_000,
    )
    expect(card.locator(".monitor-title")).to_have_text(
        "CHURN_MONITOR · TABULAR_BINARY_CLASSIFICATION · every 1 day"
    )

    drift = card.get_by_test_id("monitor-drift")
    expect(drift).to_have_attribute("data-points", str(MONITOR_DAYS))
    expect(drift.locator("canvas")).to_have_count(1)
    expect(drift.locator(".u-legend .u-series:not(:first-child) .u-label")).to_have_text(FEATURES)

    performance = card.get_by_test_id("monitor-performance")
    expect(performance).to_have_attribute("data-points", str(MONITOR_DAYS))
    expect(performance.locator("h3")).to_have_text("Performance (CLASSIFICATION_ACCURACY)")
    last = source.iloc[-MONITOR_ROWS:]
    accuracy = accuracy_score(last.ACTUAL, last.PRED_CLASS)
    expect(performance.locator(".small")).to_have_text(f"Latest window: {accuracy:.4g}")
    expect(performance.locator("canvas")).to_have_count(1)

    count = card.get_by_test_id("monitor-count")
    expect(count).to_have_attribute("data-points", str(MONITOR_DAYS))
    expect(count.locator(".small")).to_have_text(
        f"{MONITOR_DAYS * MONITOR_ROWS} predictions in {MONITOR_DAYS} windows (PRED_CLASS not null)"
    )
    expect(count.locator("canvas")).to_have_count(1)
    assert console_errors == []
