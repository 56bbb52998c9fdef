"""The REST API of a real `runbatch server` over HTTP, on SQLite and on Postgres: tokens on every
route, stable pages, the Idempotency-Key under concurrent retries, and a job's outputs, errors and
followed logs."""

from __future__ import annotations

import io
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import schemathesis.openapi
from fastapi.routing import iter_route_contexts
from playwright.sync_api import expect, sync_playwright
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import response_schema_conformance
from sqlalchemy import update

from migrations import upgrade_to_head
from runbatch.client import ControlPlaneClient
from runbatch.core import Root
from runbatch.core.task.dagv1 import DAG, DAGOperation, DAGTask
from runbatch.ml.model.batch import JobSpec, OutputSpec
from runbatch.ml.registry import Registry
from runbatch.runtime.stage_files import MODEL_ERROR
from runbatch.wire.jobs import ColumnSchema, JobCreate, ModelRef, StageInput, UploadInput
from server.app import build_control_plane, create_app
from server.auth.tokens import ROLE_ADMIN, create_token, hash_secret
from server.db.engine import make_engine, make_sessionmaker
from server.db.tables import ApiTokenRow, IdempotencyKeyRow, utcnow
from server.settings import ServerSettings
from tests.e2e.models import PositiveOnly
from tests.server.test_api import assert_error_body
from tests.services import PostgresDatabase, ServerProcess

pytestmark = pytest.mark.server

POOL = "SYSTEM_COMPUTE_POOL_CPU"
CHROMIUM = "/usr/bin/chromium"
DB = "REST"
STAGE_FILES = f"/databases/{DB}/schemas/PUBLIC/stages/DATA/files"
# Answered without a token: the liveness probe, sign-in, and pages that hold no data (their data
# comes from the authenticated API).
# Not generated: they stream or run forever by design (a followed log of a job that never ends).
SKIPPED_OPERATIONS: set[tuple[str, str]] = set()
PUBLIC_ROUTES = {("GET", "/api/v1/health"), ("POST", "/api/v1/login"), ("GET", "/"), ("GET", "/docs")}


@dataclass
class Api:
    server: ServerProcess
    database_url: str
    backend: str

    @property
    def base(self) -> str:
        return self.server.url + "/api/v1"

    def call(self, method: str, path: str, *, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token or self.server.token}", **kwargs.pop("headers", {})}
        return httpx.request(method, self.base + path, headers=headers, timeout=60, **kwargs)

    def token(self, name: str, **fields: Any) -> str:
        """A new admin token; ``fields`` (revoked_at, expires_at) are set on its row."""
        engine = make_engine(self.database_url)
        try:
            with make_sessionmaker(engine)() as session:
                secret = create_token(session, name=name, role=ROLE_ADMIN)
                if fields:
                    session.execute(
                        update(ApiTokenRow)
                        .where(ApiTokenRow.token_hash == hash_secret(secret))
                        .values(**fields)
                    )
                session.commit()
        finally:
            engine.dispose()
        return secret


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    postgres = PostgresDatabase() if request.param == "postgres" else None
    if postgres is not None:
        engine = make_engine(postgres.url)
        upgrade_to_head(engine)
        engine.dispose()
    home = tmp_path_factory.mktemp(f"rest-{request.param}")
    env = {"RUNBATCH_DATABASE_URL": postgres.url} if postgres is not None else {}
    server = ServerProcess(home, env)
    try:
        session = server.session()
        session.sql(f"CREATE DATABASE {DB}").collect()
        session.sql("CREATE STAGE DATA").collect()
        Registry(session).log_model(
            PositiveOnly(), model_name="POS", version_name="V1", sample_input_data=pd.DataFrame({"X": [1.0]})
        )
        yield Api(server, postgres.url if postgres else f"sqlite:///{home / 'runbatch.db'}", request.param)
    finally:
        server.stop()
        if postgres is not None:
            postgres.drop()


def _upload_job(output: str, **job_spec: Any) -> dict[str, Any]:
    body = JobCreate(
        model=ModelRef(database=DB, schema_="PUBLIC", name="POS", version="V1"),
        compute_pool=POOL,
        input=UploadInput(columns=[ColumnSchema(name="X", type="double")]),
        output_spec=OutputSpec(stage_location=f"@{DB}.PUBLIC.DATA/{output}/"),
        job_spec=JobSpec(**job_spec),
    )
    return body.model_dump(mode="json", by_alias=True, exclude_none=True)


def _jobs_on(api: Api, output: str) -> list[dict[str, Any]]:
    found = api.call("GET", "/jobs", params={"database": DB, "limit": 0}).json()["data"]
    return [j for j in found if j["output_location"] == f"@{DB}.PUBLIC.DATA/{output}/"]


# -- (a) authentication on every route -----------------------------------------------------------


def _app_routes(tmp_path: Path) -> list[tuple[str, str]]:
    """Every (method, path) of a real app, as the server builds it: routes added later are covered."""
    cp = build_control_plane(ServerSettings(home=tmp_path))
    try:
        app = create_app(cp)
        # FastAPI includes routers lazily: iter_route_contexts flattens them as requests see them.
        return sorted(
            (method, str(route.path))
            for route in iter_route_contexts(app.routes)
            if route.methods  # mounts (static assets) have none
            for method in route.methods
        )
    finally:
        cp.engine.dispose()


def _filled(path: str) -> str:
    return path.replace("{path:path}", "a/b.parquet").replace("{", "x").replace("}", "")


# Token checks do not depend on the metadata database; the Postgres stack is covered by the tests below.
@pytest.mark.parametrize("api", ["sqlite"], indirect=True)
def test_every_route_rejects_missing_revoked_and_expired_tokens(api: Api, tmp_path: Path) -> None:
    routes = [r for r in _app_routes(tmp_path) if r not in PUBLIC_ROUTES]
    assert len(routes) > 60
    assert ("GET", "/api/v1/openapi.json") in routes
    assert ("GET", "/api/v1/databases/{database}/schemas/{schema}/jobs/{name}/outputs") in routes
    revoked = api.token("revoked", revoked_at=utcnow() - timedelta(seconds=1))
    expired = api.token("expired", expires_at=utcnow() - timedelta(seconds=1))
    live = api.token("live", expires_at=utcnow() + timedelta(hours=1))
    assert api.call("GET", "/databases", token=live).status_code == 200
    for method, path in routes:
        url = api.server.url + _filled(path)
        for headers in ({}, {"Authorization": f"Bearer {revoked}"}, {"Authorization": f"Bearer {expired}"}):
            response = httpx.request(method, url, headers=headers, timeout=30)
            assert response.headers.get("www-authenticate") == "Bearer", (method, path, response.status_code)
            if method == "HEAD":  # an answer to HEAD has no body
                assert response.status_code == 401
                continue
            message = assert_error_body(response, 401, "unauthenticated")
            if headers:
                assert message == "The bearer token is not valid (unknown, revoked or expired).", (
                    method,
                    path,
                )
            else:
                assert message.startswith("Missing bearer token"), (method, path)


# -- (b) stable pagination -----------------------------------------------------------------------


def test_pages_are_stable_while_jobs_are_created(api: Api) -> None:
    run = uuid.uuid4().hex[:6]

    def submit(i: int) -> str:
        response = api.call(
            "POST", "/jobs", json=_upload_job(f"page_{run}_{i}", job_name=f"PAGE_{run}_{i:02d}")
        )
        assert response.status_code == 201, response.text
        return str(response.json()["name"])

    existing = [submit(i) for i in range(7)][::-1]  # newest first
    filters = {"database": DB, "search": f"page_{run}", "limit": 3}
    seen: list[str] = []
    token = None
    extra = 7
    while True:
        page = api.call("GET", "/jobs", params={**filters, **({"page_token": token} if token else {})}).json()
        seen += [j["name"] for j in page["data"]]
        token = page["next_page_token"]
        if token is None:
            break
        # New jobs between pages sort before the cursor: they never shift or repeat a later page.
        submit(extra)
        extra += 1
    assert seen == existing
    assert page["count"] == extra

    # What offsets did before: a job created between pages pushes the last row of page 1 onto page 2.
    first = [j["name"] for j in api.call("GET", "/jobs", params={**filters, "offset": 0}).json()["data"]]
    submit(extra)
    second = [j["name"] for j in api.call("GET", "/jobs", params={**filters, "offset": 3}).json()["data"]]
    assert second[0] == first[-1]

    # A token only continues the listing it came from.
    start = api.call("GET", "/jobs", params=filters).json()
    message = assert_error_body(
        api.call(
            "GET", "/jobs", params={**filters, "search": "other", "page_token": start["next_page_token"]}
        ),
        400,
        "invalid_argument",
    )
    assert message.startswith("page_token belongs to a listing with other filters")
    assert_error_body(
        api.call("GET", "/jobs", params={**filters, "page_token": "garbage"}), 400, "invalid_argument"
    )
    assert_error_body(
        api.call("GET", "/jobs", params={**filters, "page_token": start["next_page_token"], "offset": 3}),
        400,
        "invalid_argument",
    )


def test_job_list_filters(api: Api) -> None:
    run = uuid.uuid4().hex[:6]
    before = datetime.now(UTC)
    names = []
    for i in range(3):
        response = api.call("POST", "/jobs", json=_upload_job(f"filt_{run}_{i}", job_name=f"FILT_{run}_{i}"))
        names.append(response.json()["name"])
    job = f"/databases/{DB}/schemas/PUBLIC/jobs/{names[0]}"
    api.call("POST", job + "/cancel")
    deadline = time.monotonic() + 30
    while api.call("GET", job).json()["status"] != "CANCELLED":
        assert time.monotonic() < deadline, api.call("GET", job).json()
        time.sleep(0.2)

    def listed(**params: Any) -> list[str]:
        found = api.call("GET", "/jobs", params={"search": f"filt_{run}", **params})
        assert found.status_code == 200, found.text
        return sorted(j["name"] for j in found.json()["data"])

    assert listed() == sorted(names)
    assert listed(status="CANCELLED") == [names[0]]
    assert listed(status=["CANCELLED", "PENDING"]) == sorted(names)
    assert listed(status="cancelled,pending") == sorted(names)
    assert listed(status="DONE") == []
    assert listed(pool=POOL, owner="admin") == sorted(names)
    assert listed(pool="NO_SUCH_POOL") == []
    assert listed(owner="somebody-else") == []
    assert listed(database=DB, schema="PUBLIC") == sorted(names)
    assert listed(schema="OTHER") == []
    assert listed(created_after=before.isoformat()) == sorted(names)
    assert listed(created_before=before.isoformat()) == []
    assert listed(name=names[1]) == [names[1]]
    message = assert_error_body(
        api.call("GET", "/jobs", params={"created_after": "2026-01-01T00:00:00"}), 400, "invalid_argument"
    )
    assert message == "created_after needs a time zone, e.g. 2026-11-22T05:00:00Z."


# -- (c) Idempotency-Key -------------------------------------------------------------------------


def _fire(api: Api, n: int, body: dict[str, Any], key: str, token: str | None = None) -> list[httpx.Response]:
    """``n`` threads send the same POST at the same moment."""
    barrier = threading.Barrier(n)
    responses: list[httpx.Response] = []
    lock = threading.Lock()

    def one() -> None:
        barrier.wait()
        response = api.call("POST", "/jobs", json=body, headers={"Idempotency-Key": key}, token=token)
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(responses) == n
    return responses


def test_concurrent_retries_with_one_idempotency_key_make_one_job(api: Api) -> None:
    output = f"idem_{uuid.uuid4().hex[:6]}"
    body, key = _upload_job(output), str(uuid.uuid4())
    responses = _fire(api, 8, body, key)
    assert sorted(r.status_code for r in responses) == [201] * 8, [r.text for r in responses]
    bodies = {r.text for r in responses}
    assert len(bodies) == 1  # byte for byte the first answer
    assert (
        sorted(r.headers.get("idempotent-replayed", "false") for r in responses) == ["false"] + ["true"] * 7
    )
    (job,) = _jobs_on(api, output)
    assert job["uuid"] == responses[0].json()["uuid"]

    # A later retry still gets the same job.
    again = api.call("POST", "/jobs", json=body, headers={"Idempotency-Key": key})
    assert (again.status_code, again.text) == (201, responses[0].text)

    # The same key with another body is refused, and starts nothing.
    message = assert_error_body(
        api.call("POST", "/jobs", json=_upload_job(output + "_b"), headers={"Idempotency-Key": key}),
        409,
        "conflict",
    )
    assert message.startswith(f"Idempotency-Key '{key}' was already used with a different request")
    assert _jobs_on(api, output + "_b") == []

    # Keys belong to their caller: another caller's same key is another request.
    other = api.token("other-caller")
    mine = api.call(
        "POST", "/jobs", json=_upload_job(output + "_c"), headers={"Idempotency-Key": key}, token=other
    )
    assert mine.status_code == 201 and mine.json()["uuid"] != job["uuid"]

    # An expired key is forgotten: the same key starts a new job.
    engine = make_engine(api.database_url)
    with make_sessionmaker(engine)() as session:
        session.execute(
            update(IdempotencyKeyRow).where(IdempotencyKeyRow.key == key).values(expires_at=utcnow())
        )
        session.commit()
    engine.dispose()
    fresh = api.call("POST", "/jobs", json=body, headers={"Idempotency-Key": key})
    assert fresh.status_code == 201 and fresh.json()["uuid"] != job["uuid"]
    assert len(_jobs_on(api, output)) == 2


def test_a_refused_request_releases_its_key(api: Api) -> None:
    output, key = f"idem_{uuid.uuid4().hex[:6]}", str(uuid.uuid4())
    wrong = _upload_job(output)
    wrong["model"]["version"] = "NOPE"
    responses = _fire(api, 4, wrong, key)
    assert sorted(r.status_code for r in responses) == [404] * 4
    # Nothing was recorded under the key: the corrected request (another body) runs.
    fixed = api.call("POST", "/jobs", json=_upload_job(output), headers={"Idempotency-Key": key})
    assert fixed.status_code == 201, fixed.text
    assert len(_jobs_on(api, output)) == 1
    message = assert_error_body(
        api.call("POST", "/jobs", json=_upload_job(output), headers={"Idempotency-Key": "has space"}),
        400,
        "invalid_argument",
    )
    assert message.startswith("The Idempotency-Key header must be 1 to 255 printable ASCII characters")


def test_retries_of_a_dag_execute_with_one_key_start_one_run(api: Api) -> None:
    session = api.server.session()
    name = f"IDEM_{uuid.uuid4().hex[:6].upper()}"
    with DAG(name, allow_overlapping_execution=True) as dag:
        DAGTask("ONE", "SELECT 1 AS ONE")
    DAGOperation(Root(session).databases[DB].schemas["PUBLIC"]).deploy(dag)
    path, key = f"/databases/{DB}/schemas/PUBLIC/dags/{name}/execute", str(uuid.uuid4())
    barrier, lock = threading.Barrier(6), threading.Lock()
    responses: list[httpx.Response] = []

    def one() -> None:
        barrier.wait()
        response = api.call("POST", path, headers={"Idempotency-Key": key})
        with lock:
            responses.append(response)

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sorted(r.status_code for r in responses) == [201] * 6, [r.text for r in responses]
    assert len({r.text for r in responses}) == 1
    assert (
        sorted(r.headers.get("idempotent-replayed", "false") for r in responses) == ["false"] + ["true"] * 5
    )
    runs = api.call("GET", f"/databases/{DB}/schemas/PUBLIC/dags/{name}/runs").json()
    assert [r["uuid"] for r in runs] == [responses[0].json()["uuid"]]
    # Without a key, or with another one, each POST is a run of its own.
    assert api.call("POST", path).json()["uuid"] != responses[0].json()["uuid"]
    fresh = api.call("POST", path, headers={"Idempotency-Key": str(uuid.uuid4())})
    assert fresh.status_code == 201
    assert len(api.call("GET", f"/databases/{DB}/schemas/PUBLIC/dags/{name}/runs").json()) == 3


class _LosesTheFirstJobAnswer(httpx.HTTPTransport):
    """A real HTTP transport whose first job POST reaches the server but whose answer is lost."""

    def __init__(self) -> None:
        super().__init__()
        self.keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        if request.method == "POST" and request.url.path == "/api/v1/jobs":
            self.keys.append(request.headers["idempotency-key"])
            if len(self.keys) == 1:
                response.read()
                raise httpx.ReadError("connection reset while reading the answer")
        return response


def test_the_sdk_retries_a_lost_submission_without_a_second_job(api: Api) -> None:
    output = f"sdk_{uuid.uuid4().hex[:6]}"
    transport = _LosesTheFirstJobAnswer()
    client = ControlPlaneClient(api.server.url, api.server.token, transport=transport)
    try:
        job = client.submit_job(JobCreate.model_validate(_upload_job(output)))
        again = client.submit_job(JobCreate.model_validate(_upload_job(output + "_2")))
    finally:
        client.close()
    # The retry carried the same key and got the job the lost answer described; each call has its own key.
    assert len(transport.keys) == 3 and transport.keys[0] == transport.keys[1] != transport.keys[2]
    assert [j["uuid"] for j in _jobs_on(api, output)] == [str(job.uuid)]
    assert [j["uuid"] for j in _jobs_on(api, output + "_2")] == [str(again.uuid)]


# -- (e) outputs, errors, functions, followed logs -----------------------------------------------


def _put_parquet(api: Api, path: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    response = api.call("PUT", f"{STAGE_FILES}/{path}", content=buffer.getvalue())
    assert response.status_code == 201, response.text


def test_outputs_errors_and_followed_logs_of_a_real_job(api: Api) -> None:
    run = uuid.uuid4().hex[:6]
    _put_parquet(api, f"in_{run}/part.parquet", pa.table({"X": [1.0, 2.0, 3.0, -4.0, 5.0, 6.0]}))
    body = JobCreate(
        model=ModelRef(database=DB, schema_="PUBLIC", name="POS", version="V1"),
        compute_pool=POOL,
        input=StageInput(location=f"@{DB}.PUBLIC.DATA/in_{run}/"),
        output_spec=OutputSpec(stage_location=f"@{DB}.PUBLIC.DATA/out_{run}/"),
        job_spec=JobSpec(max_batch_rows=2),
    ).model_dump(mode="json", by_alias=True, exclude_none=True)
    job = api.call("POST", "/jobs", json=body).json()
    path = f"/databases/{DB}/schemas/PUBLIC/jobs/{job['name']}"

    # Followed from the start, the stream ends only once the job has ended, with every line.
    streamed: list[dict[str, Any]] = []
    with httpx.stream(
        "GET", api.base + path + "/logs", params={"follow": "true"}, headers=api.server.auth, timeout=120
    ) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "application/x-ndjson"
        streamed += [json.loads(line) for line in stream.iter_lines() if line]
    finished = api.call("GET", path).json()
    assert finished["status"] == "DONE", finished
    assert (finished["rows_done"], finished["rows_failed"]) == (6, 1)
    stored = api.call("GET", path + "/logs").json()["data"]
    assert streamed == stored and stored
    tail = [
        json.loads(line)
        for line in api.call("GET", path + "/logs?follow=true&limit=1").text.splitlines()
        if line
    ]
    assert tail == stored[-1:]

    outputs = api.call("GET", path + "/outputs").json()
    listed = api.call("GET", STAGE_FILES, params={"path": f"out_{run}/"}).json()
    expected = sorted((f["path"].removeprefix(f"out_{run}/"), f["size"]) for f in listed)
    assert [(f["path"], f["size"]) for f in outputs["files"]] == expected
    assert outputs["success"] is True and outputs["location"] == f"@{DB}.PUBLIC.DATA/out_{run}/"
    assert outputs["total_bytes"] == sum(size for _, size in expected)
    assert {"_SUCCESS", "_manifest.json"} <= {p for p, _ in expected}
    assert len([p for p, _ in expected if p.startswith("_errors/")]) == 1

    errors = api.call("GET", path + "/errors", params={"limit": 10}).json()
    assert errors == {
        "columns": ["X", "ERROR_CODE", "ERROR_MESSAGE"],
        "data": [{"X": -4.0, "ERROR_CODE": MODEL_ERROR, "ERROR_MESSAGE": "ValueError: negative input"}],
        "files": 1,
        "truncated": False,
    }
    assert_error_body(api.call("GET", path + "/errors", params={"limit": 0}), 422, "invalid_argument")

    functions = api.call(
        "GET", f"/databases/{DB}/schemas/PUBLIC/models/POS/versions/DEFAULT/functions"
    ).json()
    assert [(f["name"], f["target_method"]) for f in functions] == [("PREDICT", "predict")]
    assert [i["name"] for i in functions[0]["signature"]["inputs"]] == ["X"]
    assert_error_body(
        api.call("GET", f"/databases/{DB}/schemas/PUBLIC/models/POS/versions/NOPE/functions"),
        404,
        "not_found",
    )


# -- (d) property-based run of the OpenAPI spec ---------------------------------------------------


def test_openapi_spec_holds_under_generated_requests(tmp_path: Path) -> None:
    """Schemathesis calls every operation with generated requests (admin token, a throwaway server):
    no 500s, and every answer conforms to the response schemas the spec documents."""
    server = ServerProcess(tmp_path)
    try:
        session = server.session()
        session.sql(f"CREATE DATABASE {DB}").collect()
        session.sql("CREATE STAGE DATA").collect()
        spec = httpx.get(server.url + "/api/v1/openapi.json", headers=server.auth, timeout=60).json()
        schema = schemathesis.openapi.from_dict(spec)
        failures: list[str] = []
        started = time.monotonic()
        for result in schema.get_all_operations():
            if not isinstance(result, Ok):
                failures.append(f"an operation the spec describes wrongly: {result}")
                continue
            operation = result.ok()
            if (operation.method.upper(), operation.path) in SKIPPED_OPERATIONS:
                continue

            @hypothesis.settings(
                max_examples=6,
                deadline=None,
                database=None,
                phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
                suppress_health_check=list(hypothesis.HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy())
            def call(case: Any) -> None:
                response = case.call(base_url=server.url, headers=server.auth, timeout=60)
                case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])

            try:
                call()
            except (Exception, BaseExceptionGroup) as exc:  # collected, reported together below
                failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
        assert failures == [], "\n\n".join(failures)
        assert time.monotonic() - started < 120
    finally:
        server.stop()


# -- /docs -----------------------------------------------------------------------------------------


def test_docs_page_works_offline_with_the_dashboard_token(server_process: ServerProcess) -> None:
    """Swagger UI from the package in headless Chromium: every request stays on the server, the spec
    loads with the token the dashboard's sign-in keeps in sessionStorage, or with a pasted one."""
    page_headers = httpx.get(server_process.url + "/docs").headers
    assert page_headers["content-security-policy"].startswith("default-src 'self'; script-src 'self';")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        try:
            context = browser.new_context(base_url=server_process.url)
            page = context.new_page()
            requested: list[str] = []
            errors: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.on(
                "console", lambda message: errors.append(message.text) if message.type == "error" else None
            )
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto("/docs")
            expect(page.locator("#token-state")).to_have_text(
                "No token: paste an API token (or sign in on the dashboard)."
            )
            page.fill("#token", server_process.token)
            page.click("text=Use token")
            jobs = page.locator('.opblock-summary-path[data-path="/api/v1/jobs"]')
            expect(jobs.first).to_be_visible(timeout=60_000)
            assert page.locator(".opblock").count() > 100

            # A tab the dashboard signed in: the token is already in sessionStorage.
            signed_in = context.new_page()
            signed_in.add_init_script(f"sessionStorage.setItem('runbatch.token', '{server_process.token}')")
            signed_in.goto("/docs")
            expect(signed_in.locator("#token-state")).to_have_text("Using the token of this tab's session.")
            expect(signed_in.locator('.opblock-summary-path[data-path="/api/v1/jobs"]').first).to_be_visible(
                timeout=60_000
            )
        finally:
            browser.close()
    assert [url for url in requested if not url.startswith(server_process.url)] == []
    assert errors == []
