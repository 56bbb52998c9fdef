"""Users, roles, tokens and grants against a real `runbatch server`, on SQLite and on Postgres."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from runbatch.errors import NotFoundError, PermissionDeniedError
from runbatch.ml.model.batch import OutputSpec
from runbatch.ml.registry import Registry
from runbatch.snowpark import Session
from server.auth.privileges import USER_ENDPOINTS
from tests.e2e.models import Doubler
from tests.services import PostgresDatabase, ServerProcess

ALICE_PASSWORD = "alice-Pa55word-91"
BOB_PASSWORD = "bob-Pa55word-47"
SAMPLE = pd.DataFrame({"X": [1.0]})


@dataclass
class Stack:
    server: ServerProcess
    admin: Session
    alice: str  # alice's login token: role ANALYST
    bob: str  # bob's login token: PUBLIC only

    @property
    def api(self) -> str:
        return f"{self.server.url}/api/v1"

    def as_user(self, token: str) -> Session:
        return Session.builder.configs({"url": self.server.url, "token": token}).create()


def _migrate(home: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "runbatch.cli", "migrate"],
        env=dict(os.environ, RUNBATCH_HOME=str(home), **env),
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _login(api: str, username: str, password: str) -> httpx.Response:
    return httpx.post(f"{api}/login", json={"username": username, "password": password})


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    home = tmp_path_factory.mktemp(f"access-{request.param}")
    env: dict[str, str] = {}
    database = None
    if request.param == "postgres":
        database = PostgresDatabase()
        env["RUNBATCH_DATABASE_URL"] = database.url
        _migrate(home, env)
    server = ServerProcess(home, env)
    admin = server.session()
    try:
        for sql in (
            "CREATE DATABASE ML",
            "CREATE STAGE ML.PUBLIC.OUT",
            "CREATE ROLE ANALYST",
            f"CREATE USER alice PASSWORD='{ALICE_PASSWORD}' DEFAULT_ROLE=ANALYST",
            f"CREATE USER bob PASSWORD='{BOB_PASSWORD}'",
            "GRANT USAGE ON COMPUTE POOL SYSTEM_COMPUTE_POOL_CPU TO ROLE ANALYST",
            "GRANT WRITE ON STAGE ML.PUBLIC.OUT TO ROLE ANALYST",
        ):
            admin.sql(sql).collect()
        Registry(admin, database_name="ML", schema_name="PUBLIC").log_model(
            Doubler(), model_name="DOUBLER", version_name="V1", sample_input_data=SAMPLE
        )
        admin.sql("GRANT USAGE ON MODEL ML.PUBLIC.DOUBLER TO ROLE ANALYST").collect()
        alice = _login(f"{server.url}/api/v1", "alice", ALICE_PASSWORD).json()["token"]
        bob = _login(f"{server.url}/api/v1", "BOB", BOB_PASSWORD).json()["token"]
        yield Stack(server, admin, alice, bob)
    finally:
        admin.close()
        server.stop()
        if database is not None:
            database.drop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _operations(stack: Stack) -> list[tuple[str, str, str, bool]]:
    """(method, path template, path with placeholders filled, opened to users) of every authenticated route."""
    spec = httpx.get(f"{stack.api}/openapi.json", headers=stack.server.auth, timeout=120).json()
    out = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if path in ("/api/v1/health", "/api/v1/login"):
                continue
            filled = re.sub(r"\{[^}]+\}", "X", path)
            out.append((method.upper(), path, filled, _user_operation(op["operationId"], method, path)))
    return out


def _user_operation(operation_id: str, method: str, path: str) -> bool:
    """Whether the route is one USER_ENDPOINTS opens to users (FastAPI's id: name + path + method)."""
    return any(
        operation_id == re.sub(r"\W", "_", f"{name.rsplit('.', 1)[1]}{path}") + f"_{method.lower()}"
        for name in USER_ENDPOINTS
    )


def test_login_me_logout(stack: Stack) -> None:
    answer = _login(stack.api, "alice", ALICE_PASSWORD)
    assert answer.status_code == 200
    body = answer.json()
    assert body["user"] == {"name": "ALICE", "roles": ["ANALYST", "PUBLIC"], "default_role": "ANALYST"}
    assert body["token"].startswith("rbt_")
    lifetime = pd.Timestamp(body["expires_at"]) - pd.Timestamp.now(tz="UTC")
    assert pd.Timedelta(hours=11, minutes=59) < lifetime <= pd.Timedelta(hours=12)
    token = body["token"]
    me = httpx.get(f"{stack.api}/me", headers=_bearer(token))
    assert me.json() == {
        "name": "ALICE",
        "roles": ["ANALYST", "PUBLIC"],
        "default_role": "ANALYST",
        "admin": False,
    }
    admin_me = httpx.get(f"{stack.api}/me", headers=stack.server.auth).json()
    assert admin_me == {
        "name": "admin",
        "roles": ["ACCOUNTADMIN", "PUBLIC"],
        "default_role": "ACCOUNTADMIN",
        "admin": True,
    }
    assert httpx.post(f"{stack.api}/logout", headers=_bearer(token)).status_code == 204
    # The installation's admin token never expires: logout refuses it rather than lock everyone out.
    refused = httpx.post(f"{stack.api}/logout", headers=stack.server.auth)
    assert refused.status_code == 400
    assert refused.json()["error"]["message"].startswith(
        "This token never expires, so it is not a sign-in to end."
    )
    assert httpx.get(f"{stack.api}/me", headers=stack.server.auth).status_code == 200
    after = httpx.get(f"{stack.api}/me", headers=_bearer(token))
    assert after.status_code == 401 and after.json()["error"]["code"] == "unauthenticated"


def test_wrong_credentials_get_one_answer(stack: Stack) -> None:
    wrong_password = _login(stack.api, "alice", "not-the-password")
    unknown_user = _login(stack.api, "mallory", ALICE_PASSWORD)
    no_password_user = _login(stack.api, "admin", "anything-at-all")  # admin has no password here
    for answer in (wrong_password, unknown_user, no_password_user):
        assert answer.status_code == 401
        assert answer.json() == {
            "error": {"code": "unauthenticated", "message": "Incorrect username or password was specified."}
        }


def test_every_admin_route_refuses_a_public_only_user(stack: Stack) -> None:
    refused = 0
    for method, _, path, for_users in _operations(stack):
        if for_users:
            continue
        answer = httpx.request(
            method, stack.server.url + path, headers=_bearer(stack.bob), json={}, timeout=60
        )
        assert answer.status_code == 403, (method, path, answer.text)
        assert answer.json()["error"]["code"] == "permission_denied", (method, path)
        refused += 1
    assert refused >= 20  # users, roles, databases, stages, pools, workers, shards, DAGs...


# A walk of every route; token checks do not depend on the metadata database (the other tests run both).
@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_revoked_and_expired_tokens_are_refused_everywhere(stack: Stack) -> None:
    created = httpx.post(f"{stack.api}/tokens", headers=_bearer(stack.alice), json={"name": "ci"}).json()
    assert created["user"] == "ALICE" and created["expires_at"] is None and created["revoked_at"] is None
    revoked = created["secret"]
    assert httpx.get(f"{stack.api}/me", headers=_bearer(revoked)).status_code == 200
    listed = httpx.get(f"{stack.api}/tokens", headers=_bearer(stack.alice)).json()
    assert created["id"] in [t["id"] for t in listed] and all("secret" not in t for t in listed)
    assert (
        httpx.delete(f"{stack.api}/tokens/{created['id']}", headers=_bearer(stack.alice)).status_code == 204
    )
    short = httpx.post(
        f"{stack.api}/tokens", headers=_bearer(stack.alice), json={"name": "short", "expires_in": "1s"}
    ).json()
    time.sleep(1.2)
    checked = 0
    for method, _, path, _ in _operations(stack):
        for secret in (revoked, short["secret"]):
            answer = httpx.request(
                method, stack.server.url + path, headers=_bearer(secret), json={}, timeout=60
            )
            assert answer.status_code == 401, (method, path, answer.text)
            assert answer.json() == {
                "error": {
                    "code": "unauthenticated",
                    "message": "The bearer token is not valid (unknown, revoked or expired).",
                }
            }
            checked += 1
    assert checked >= 80


def test_a_user_revokes_only_their_own_tokens(stack: Stack) -> None:
    theirs = httpx.post(f"{stack.api}/tokens", headers=_bearer(stack.alice), json={"name": "x"}).json()
    answer = httpx.delete(f"{stack.api}/tokens/{theirs['id']}", headers=_bearer(stack.bob))
    assert answer.status_code == 404
    assert httpx.get(f"{stack.api}/me", headers=_bearer(theirs["secret"])).status_code == 200
    for_bob = httpx.post(
        f"{stack.api}/tokens", headers=_bearer(stack.alice), json={"name": "x", "user": "bob"}
    )
    assert for_bob.status_code == 403
    by_admin = httpx.post(f"{stack.api}/tokens", headers=stack.server.auth, json={"name": "x", "user": "bob"})
    assert by_admin.status_code == 201 and by_admin.json()["user"] == "BOB"


def test_usage_runs_inference_but_does_not_read_artifacts(stack: Stack, tmp_path: Path) -> None:
    session = stack.as_user(stack.alice)
    registry = Registry(session, database_name="ML", schema_name="PUBLIC")
    assert registry.show_models()["name"].tolist() == ["DOUBLER"]
    mv = registry.get_model("DOUBLER").version("V1")
    job = mv.run_batch(
        pd.DataFrame({"X": [1.0, 2.0, 3.0]}),
        compute_pool="SYSTEM_COMPUTE_POOL_CPU",
        output_spec=OutputSpec(stage_location="@ML.PUBLIC.OUT/alice/"),
    )
    assert job.wait(120) == "DONE"
    mine = httpx.get(f"{stack.api}/jobs", headers=_bearer(stack.alice)).json()
    assert [(j["name"], j["owner"], j["status"]) for j in mine["data"]] == [(job.name, "ALICE", "DONE")]
    with (
        pytest.warns(RuntimeWarning, match="Loading model requires"),
        pytest.raises(PermissionDeniedError, match="needs the OWNERSHIP privilege"),
    ):
        mv.load()
    with pytest.raises(PermissionDeniedError, match="needs the OWNERSHIP privilege"):
        mv.export(str(tmp_path / "export"))
    artifact = httpx.get(
        f"{stack.api}/databases/ML/schemas/PUBLIC/models/DOUBLER/versions/V1/artifact",
        headers=_bearer(stack.alice),
    )
    assert artifact.status_code == 403
    assert artifact.json()["error"]["code"] == "permission_denied"
    assert "OWNERSHIP" in artifact.json()["error"]["message"]
    # Alice's job is hers: bob does not see it.
    assert httpx.get(f"{stack.api}/jobs", headers=_bearer(stack.bob)).json()["count"] == 0
    session.close()


def test_without_usage_a_model_does_not_exist(stack: Stack) -> None:
    session = stack.as_user(stack.bob)
    registry = Registry(session, database_name="ML", schema_name="PUBLIC")
    assert registry.show_models().empty
    assert session.sql("SHOW MODELS IN SCHEMA ML.PUBLIC").collect() == []
    with pytest.raises(NotFoundError, match=r"^Unable to find model DOUBLER$"):
        registry.get_model("DOUBLER").version("V1")
    answer = httpx.get(f"{stack.api}/databases/ML/schemas/PUBLIC/models/DOUBLER", headers=_bearer(stack.bob))
    assert answer.status_code == 404
    job = httpx.post(
        f"{stack.api}/jobs",
        headers=_bearer(stack.bob),
        json={
            "model": {"database": "ML", "schema": "PUBLIC", "name": "DOUBLER", "version": "V1"},
            "compute_pool": "SYSTEM_COMPUTE_POOL_CPU",
            "input": {"kind": "upload", "arrow_schema": ""},
            "output_spec": {"stage_location": "@ML.PUBLIC.OUT/bob/"},
        },
    )
    assert (
        job.status_code == 404 and job.json()["error"]["message"] == "Unable to find model ML.PUBLIC.DOUBLER"
    )
    session.close()


def test_future_and_all_grants(stack: Stack) -> None:
    admin = stack.admin
    admin.sql("CREATE SCHEMA ML.FUT").collect()
    admin.sql("CREATE SCHEMA ML.ALLS").collect()
    admin_registry = {s: Registry(admin, database_name="ML", schema_name=s) for s in ("FUT", "ALLS")}
    admin.sql("GRANT USAGE ON FUTURE MODELS IN SCHEMA ML.FUT TO ROLE ANALYST").collect()
    admin_registry["FUT"].log_model(
        Doubler(), model_name="LATER", version_name="V1", sample_input_data=SAMPLE
    )
    for name in ("A", "B"):
        admin_registry["ALLS"].log_model(
            Doubler(), model_name=name, version_name="V1", sample_input_data=SAMPLE
        )
    alice = stack.as_user(stack.alice)
    mine = {s: Registry(alice, database_name="ML", schema_name=s) for s in ("FUT", "ALLS")}
    assert mine["FUT"].show_models()["name"].tolist() == ["LATER"]
    assert mine["ALLS"].show_models().empty
    admin.sql("GRANT USAGE ON ALL MODELS IN SCHEMA ML.ALLS TO ROLE ANALYST").collect()
    assert mine["ALLS"].show_models()["name"].tolist() == ["A", "B"]
    # ALL covers the models there now, not the ones created later.
    admin_registry["ALLS"].log_model(Doubler(), model_name="C", version_name="V1", sample_input_data=SAMPLE)
    assert mine["ALLS"].show_models()["name"].tolist() == ["A", "B"]
    future = admin.sql("SHOW FUTURE GRANTS IN SCHEMA ML.FUT").collect()
    assert [(r["privilege"], r["grant_on"], r["grantee_name"]) for r in future] == [
        ("USAGE", "MODEL", "ANALYST")
    ]
    on_model = admin.sql("SHOW GRANTS ON MODEL ML.FUT.LATER").collect()
    assert [(r["privilege"], r["granted_on"], r["name"], r["grantee_name"]) for r in on_model] == [
        ("OWNERSHIP", "MODEL", "ML.FUT.LATER", "ACCOUNTADMIN"),
        ("USAGE", "MODEL", "ML.FUT.LATER", "ANALYST"),
    ]
    admin.sql("REVOKE USAGE ON MODEL ML.ALLS.A FROM ROLE ANALYST").collect()
    assert mine["ALLS"].show_models()["name"].tolist() == ["B"]
    alice.close()


def test_rest_grants_and_users(stack: Stack) -> None:
    auth = stack.server.auth
    created = httpx.post(
        f"{stack.api}/users", headers=auth, json={"name": "carol", "password": "carol-Pa55word-3"}
    )
    assert created.status_code == 201
    assert created.json()["roles"] == ["PUBLIC"] and created.json()["default_role"] == "PUBLIC"
    assert (
        httpx.post(f"{stack.api}/roles", headers=auth, json={"name": "viewers"}).json()["name"] == "VIEWERS"
    )
    granted = httpx.post(f"{stack.api}/users/carol/roles", headers=auth, json={"role": "viewers"})
    assert granted.json()["roles"] == ["PUBLIC", "VIEWERS"]
    grant = {"privilege": "USAGE", "object_type": "MODEL", "name": "ML.PUBLIC.DOUBLER", "role": "viewers"}
    assert httpx.post(f"{stack.api}/grants", headers=auth, json=grant).status_code == 204
    carol = _login(stack.api, "carol", "carol-Pa55word-3").json()["token"]
    listed = httpx.get(f"{stack.api}/databases/ML/schemas/PUBLIC/models", headers=_bearer(carol)).json()
    assert [m["name"] for m in listed] == ["DOUBLER"]
    to_role = httpx.get(f"{stack.api}/grants", headers=auth, params={"role": "VIEWERS"}).json()
    assert [(g["privilege"], g["name"], g["grantee_name"]) for g in to_role] == [
        ("USAGE", "ML.PUBLIC.DOUBLER", "VIEWERS")
    ]
    assert httpx.post(f"{stack.api}/grants/revoke", headers=auth, json=grant).status_code == 204
    assert httpx.get(f"{stack.api}/databases/ML/schemas/PUBLIC/models", headers=_bearer(carol)).json() == []
    # Only the owner or ACCOUNTADMIN grants on a model.
    refused = httpx.post(f"{stack.api}/grants", headers=_bearer(stack.alice), json=grant)
    assert refused.status_code == 403 and "OWNERSHIP" in refused.json()["error"]["message"]
    assert httpx.delete(f"{stack.api}/users/carol", headers=auth).status_code == 204
    assert httpx.get(f"{stack.api}/me", headers=_bearer(carol)).status_code == 401


def test_the_owner_of_a_new_model_is_the_creators_role(stack: Stack) -> None:
    alice = stack.as_user(stack.alice)
    registry = Registry(alice, database_name="ML", schema_name="PUBLIC")
    mv = registry.log_model(Doubler(), model_name="ALICES", version_name="V1", sample_input_data=SAMPLE)
    with pytest.warns(RuntimeWarning):
        assert isinstance(mv.load(), Doubler)  # OWNERSHIP reads the artifact
    rows = alice.sql("SHOW GRANTS ON MODEL ML.PUBLIC.ALICES").collect()
    assert [(r["privilege"], r["grantee_name"], r["granted_by"]) for r in rows] == [
        ("OWNERSHIP", "ANALYST", "ANALYST")
    ]
    bob = stack.as_user(stack.bob)
    assert Registry(bob, database_name="ML", schema_name="PUBLIC").show_models().empty
    with pytest.raises(PermissionDeniedError, match="ACCOUNTADMIN"):
        bob.sql("CREATE DATABASE NOPE").collect()
    with pytest.raises(PermissionDeniedError, match="ACCOUNTADMIN"):
        bob.sql("GRANT ROLE ANALYST TO USER bob").collect()
    # Services run any image on the worker's network: none of their statements is open to users.
    for statement in (
        "EXECUTE JOB SERVICE IN COMPUTE POOL SYSTEM_COMPUTE_POOL_CPU NAME = X "
        "FROM SPECIFICATION $$spec: {containers: [{name: main, image: busybox}]}$$",
        "SHOW SERVICES",
        "DROP SERVICE X",
    ):
        with pytest.raises(PermissionDeniedError) as refused:
            bob.sql(statement).collect()
        assert "on container services: it needs the ACCOUNTADMIN role" in str(refused.value)
    alice.close()
    bob.close()


def test_the_cluster_refuses_default_secrets(tmp_path: Path) -> None:
    database = PostgresDatabase()
    try:
        env = {"RUNBATCH_DATABASE_URL": database.url}
        _migrate(tmp_path, env)
        compose_default = "dev-admin-token-change-me-0123456789abcdef"
        with pytest.raises(
            RuntimeError, match="RUNBATCH_ADMIN_TOKEN is a known default or placeholder value"
        ) as info:
            ServerProcess(tmp_path, {**env, "RUNBATCH_ADMIN_TOKEN": compose_default})
        assert (
            "Error: RUNBATCH_ADMIN_TOKEN is a known default or placeholder value; the cluster refuses to start "
            "with it. Generate a secret with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        ) in str(info.value)
        assert compose_default not in str(info.value)
        for home in ("again", "good"):
            (tmp_path / home).mkdir()
        with pytest.raises(RuntimeError, match="RUNBATCH_ADMIN_PASSWORD is shorter than 12 characters"):
            ServerProcess(tmp_path / "again", {**env, "RUNBATCH_ADMIN_PASSWORD": "Xk9#qLm2"})
        good: dict[str, Any] = {
            **env,
            "RUNBATCH_ADMIN_TOKEN": "Jq3vT8xWc1LmZp0RbN7sKdYf2HgA5eUo",
            "RUNBATCH_ADMIN_PASSWORD": "v7Qe-Lr2p-Xm9s-Bk4w",
        }
        server = ServerProcess(tmp_path / "good", good)
        try:
            login = _login(f"{server.url}/api/v1", "admin", "v7Qe-Lr2p-Xm9s-Bk4w").json()
            assert login["user"] == {
                "name": "admin",
                "roles": ["ACCOUNTADMIN", "PUBLIC"],
                "default_role": "ACCOUNTADMIN",
            }
        finally:
            server.stop()
    finally:
        database.drop()


def test_model_services_need_usage_to_list_and_call_and_ownership_to_create_and_drop(stack: Stack) -> None:
    services = f"{stack.api}/databases/ML/schemas/PUBLIC/models/DOUBLER/versions/V1/services"
    body = {"database": "ML", "schema": "PUBLIC", "name": "SVC", "compute_pool": "SYSTEM_COMPUTE_POOL_CPU"}
    assert httpx.get(services, headers=_bearer(stack.alice)).json() == []
    for method, url, json in (
        ("POST", services, body),
        ("DELETE", f"{services}/ML/PUBLIC/SVC", None),
    ):
        refused = httpx.request(method, url, headers=_bearer(stack.alice), json=json)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["message"].startswith(
            "Insufficient privileges to operate on model ML.PUBLIC.DOUBLER: it needs the OWNERSHIP privilege"
        )
    unseen = httpx.get(services, headers=_bearer(stack.bob))
    assert unseen.status_code == 404
    assert unseen.json()["error"]["message"] == "Unable to find model ML.PUBLIC.DOUBLER"
    call = httpx.post(
        f"{stack.api}/services/ML/PUBLIC/SVC/functions/predict",
        headers=_bearer(stack.alice),
        json={"data": []},
    )
    assert call.status_code == 404
    assert call.json()["error"]["message"] == "Service ML.PUBLIC.SVC does not exist or not authorized."
