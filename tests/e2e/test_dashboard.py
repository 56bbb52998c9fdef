"""The web dashboard in headless Chromium (Debian's, driven by Playwright) against a real `runbatch server`
running real jobs: live progress without reloads, the cancel button, sign in and out, every page."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, expect, sync_playwright
from sklearn.linear_model import LogisticRegression

from runbatch.core import Root
from runbatch.core.task import Cron
from runbatch.core.task.dagv1 import DAG, DAGOperation, DAGTask
from runbatch.ml.jobs import MLJob
from runbatch.ml.model import ModelVersion
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from tests.e2e.models import Sleeper, SlowDoubler
from tests.services import ServerProcess

# The module's scene (a model, a finished job, a DAG run) is built inside its first test's time.
pytestmark = pytest.mark.timeout(600)

CHROMIUM = "/usr/bin/chromium"
POOL = "SYSTEM_COMPUTE_POOL_CPU"
FEATURES = ["A", "B", "C", "D"]


@dataclass
class Scene:
    """A database of the test module's own with a model, a finished job and a DAG with one run."""

    session: Session
    database: str
    model: ModelVersion
    job: MLJob[object]


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
    return Scene(session=session, database=database, model=mv, job=job)


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
