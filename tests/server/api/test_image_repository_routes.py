"""The registry's token realm and the image repository routes, on a `runbatch server` (SQLite)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.registry_stub import RegistryStub, registry_stub
from tests.services import ServerProcess

PASSWORD = "alice-Pa55word-91"


@dataclass
class Api:
    client: httpx.Client
    admin: str
    alice: str  # role ANALYST (her default role): owns what she creates
    bob: str  # PUBLIC only
    registry: RegistryStub

    def sql(self, sql: str, token: str | None = None) -> Any:
        answer = self.client.post(
            "/api/v1/sql",
            json={"sql": sql, "database": "ML", "schema": "PUBLIC"},
            headers=_bearer(token or self.admin),
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def token(
        self, token: str | None, *scopes: str, basic: bool = False, service: str = "runbatch-registry"
    ) -> Any:
        headers = {}
        if token is not None:
            headers = (
                {"Authorization": "Basic " + base64.b64encode(f"anyone:{token}".encode()).decode()}
                if basic
                else _bearer(token)
            )
        return self.client.get(
            "/api/v1/registry/token", params={"service": service, "scope": list(scopes)}, headers=headers
        )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _access(answer: Any) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    claims = body["token"].split(".")[1]
    return list(json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))["access"])


@pytest.fixture(scope="module")
def stub() -> Iterator[RegistryStub]:
    with registry_stub() as running:
        yield running


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, stub: RegistryStub) -> Iterator[Api]:
    server = ServerProcess(tmp_path_factory.mktemp("registry-tokens"), {"RUNBATCH_REGISTRY_HOST": stub.host})
    client = httpx.Client(base_url=server.url, timeout=60)
    partial = Api(client, server.token, "", "", stub)
    for sql in (
        "CREATE DATABASE ML",
        "CREATE ROLE ANALYST",
        f"CREATE USER alice PASSWORD='{PASSWORD}' DEFAULT_ROLE=ANALYST",
        f"CREATE USER bob PASSWORD='{PASSWORD}'",
        "GRANT ROLE ANALYST TO USER alice",
    ):
        partial.sql(sql)
    tokens = [
        client.post("/api/v1/login", json={"username": name, "password": PASSWORD}).json()["token"]
        for name in ("alice", "bob")
    ]
    try:
        yield Api(client, server.token, tokens[0], tokens[1], stub)
    finally:
        client.close()
        server.stop()


def test_the_owner_and_accountadmin_may_push_and_pull_others_nothing(api: Api) -> None:
    assert api.sql("CREATE IMAGE REPOSITORY REPO", token=api.alice)["rows"] == [
        ["Image Repository REPO successfully created."]
    ]
    scope = "repository:ml/public/repo/app:pull,push"
    granted = [{"type": "repository", "name": "ml/public/repo/app", "actions": ["pull", "push"]}]
    assert _access(api.token(api.alice, scope)) == granted
    assert _access(api.token(api.alice, scope, basic=True)) == granted  # as `docker login` sends it
    assert _access(api.token(api.admin, scope)) == granted
    assert _access(api.token(api.bob, scope)) == [{**granted[0], "actions": []}]
    # Outside any repository nothing is granted, not even to ACCOUNTADMIN; nor on the repository path itself.
    assert _access(
        api.token(api.admin, "repository:ml/public/other/app:push", "repository:ml/public/repo:push")
    ) == [
        {"type": "repository", "name": "ml/public/other/app", "actions": []},
        {"type": "repository", "name": "ml/public/repo", "actions": []},
    ]
    # The catalog lists every repository: ACCOUNTADMIN only.
    assert _access(api.token(api.admin, "registry:catalog:*"))[0]["actions"] == ["*"]
    assert _access(api.token(api.alice, "registry:catalog:*"))[0]["actions"] == []
    # `docker login` asks with no scope: a valid token gets a token that grants nothing.
    assert _access(api.token(api.bob)) == []
    # READ pulls, WRITE pushes: granted by the owner in SQL.
    api.sql("GRANT READ ON IMAGE REPOSITORY REPO TO ROLE PUBLIC", token=api.alice)
    assert _access(api.token(api.bob, scope)) == [{**granted[0], "actions": ["pull"]}]
    api.sql("GRANT WRITE ON IMAGE REPOSITORY ML.PUBLIC.REPO TO ROLE PUBLIC", token=api.alice)
    assert _access(api.token(api.bob, scope)) == granted
    api.sql("REVOKE READ, WRITE ON IMAGE REPOSITORY REPO FROM ROLE PUBLIC", token=api.alice)
    assert _access(api.token(api.bob, scope)) == [{**granted[0], "actions": []}]


def test_the_token_route_refuses_missing_and_bad_credentials(api: Api) -> None:
    missing = api.token(None, "repository:ml/public/repo/app:pull")
    assert missing.status_code == 401
    assert missing.json()["error"]["message"].startswith("Missing bearer token or basic credentials")
    bad = api.token("rbt_not-a-token", basic=True)
    assert bad.status_code == 401
    assert bad.json()["error"]["message"] == "The bearer token is not valid (unknown, revoked or expired)."
    wrong = api.token(api.admin, service="other-registry")
    assert wrong.status_code == 400
    assert "issues registry tokens for service 'runbatch-registry', not 'other-registry'" in wrong.text


def test_repositories_over_rest_and_sql(api: Api) -> None:
    base = "/api/v1/databases/ML/schemas/PUBLIC/image-repositories"
    created = api.client.post(base, json={"name": "REST", "comment": "c"}, headers=_bearer(api.alice))
    assert created.status_code == 201, created.text
    body = created.json()
    assert {k: v for k, v in body.items() if k != "created_on"} == {
        "name": "REST",
        "database_name": "ML",
        "schema_name": "PUBLIC",
        "repository_url": f"{api.registry.host}/ml/public/rest",
        "owner": "ANALYST",
        "comment": "c",
    }
    assert api.client.post(base, json={"name": "REST"}, headers=_bearer(api.alice)).status_code == 409
    assert [r["name"] for r in api.client.get(base, headers=_bearer(api.admin)).json()] == ["REPO", "REST"]
    # Only what a role holds a privilege on is listed (and found), as on Snowflake.
    assert [r["name"] for r in api.client.get(base, headers=_bearer(api.alice)).json()] == ["REPO", "REST"]
    assert api.client.get(base, headers=_bearer(api.bob)).json() == []
    assert api.sql("SHOW IMAGE REPOSITORIES IN ACCOUNT", token=api.bob)["rows"] == []
    assert api.client.get(f"{base}/REST", headers=_bearer(api.bob)).status_code == 404
    shown = api.sql("SHOW IMAGE REPOSITORIES LIKE 'res%' IN SCHEMA ML.PUBLIC")
    assert shown["columns"][:5] == ["created_on", "name", "database_name", "schema_name", "repository_url"]
    assert [r[1:8] for r in shown["rows"]] == [
        ["REST", "ML", "PUBLIC", f"{api.registry.host}/ml/public/rest", "ANALYST", "ROLE", "c"]
    ]
    refused = api.client.delete(f"{base}/REST", headers=_bearer(api.bob))
    assert refused.status_code == 403
    assert "needs its owner role ANALYST or ACCOUNTADMIN" in refused.json()["error"]["message"]
    api.registry.push("ml/public/rest/app", "1", ["sha256:" + "f" * 64])
    assert api.client.delete(f"{base}/REST", headers=_bearer(api.alice)).status_code == 204
    assert api.registry.tags["ml/public/rest/app"] == {}  # its images went with it
    assert api.sql("DROP IMAGE REPOSITORY IF EXISTS REST")["rows"] == [
        ["Drop statement executed successfully."]
    ]
    assert api.client.get(f"{base}/REST", headers=_bearer(api.admin)).status_code == 404


def test_names_the_registry_cannot_hold_are_refused(api: Api) -> None:
    answer = api.client.post(
        "/api/v1/sql",
        json={"sql": 'CREATE IMAGE REPOSITORY "my repo"', "database": "ML", "schema": "PUBLIC"},
        headers=_bearer(api.admin),
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["message"].startswith(
        "Image repository name 'my repo' cannot be part of a registry path"
    )
