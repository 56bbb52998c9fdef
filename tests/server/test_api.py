"""The REST API of a real `runbatch server`: authentication on every route, one error body."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import ServerProcess


def _routes(server: ServerProcess) -> list[tuple[str, str]]:
    spec = httpx.get(f"{server.url}/openapi.json").json()
    return [(method.upper(), path) for path, ops in spec["paths"].items() for method in ops]


def _fill(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-0000-0000-000000000000", path)


def assert_error_body(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and sorted(body["error"]) == ["code", "message"]
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    return message


def test_every_route_but_health_needs_a_token(server_process: ServerProcess) -> None:
    routes = _routes(server_process)
    assert len(routes) > 40
    for method, path in routes:
        response = httpx.request(method, server_process.url + _fill(path))
        if path == "/api/v1/health":
            assert response.status_code == 200
            continue
        message = assert_error_body(response, 401, "unauthenticated")
        assert message.startswith("Missing bearer token")
        assert response.headers["www-authenticate"] == "Bearer"
        wrong = httpx.request(
            method, server_process.url + _fill(path), headers={"Authorization": "Bearer rbt_nope"}
        )
        assert_error_body(wrong, 401, "unauthenticated")


def test_errors_share_one_body(server_process: ServerProcess) -> None:
    auth = {"Authorization": f"Bearer {server_process.token}"}
    base = server_process.url + "/api/v1"
    assert_error_body(httpx.get(f"{base}/databases/NOPE", headers=auth), 404, "not_found")
    assert_error_body(httpx.get(f"{base}/no/such/route", headers=auth), 404, "not_found")
    assert_error_body(httpx.post(f"{base}/sql", headers=auth, json={}), 422, "invalid_argument")
    assert_error_body(httpx.post(f"{base}/sql", headers=auth, json={"sql": "SELECT 1"}), 400, "unsupported")
    assert_error_body(httpx.delete(f"{base}/jobs", headers=auth), 405, "method_not_allowed")


def test_stage_paths_cannot_escape_their_stage(server_process: ServerProcess) -> None:
    auth = {"Authorization": f"Bearer {server_process.token}"}
    base = server_process.url + "/api/v1"
    httpx.post(f"{base}/sql", headers=auth, json={"sql": "CREATE DATABASE IF NOT EXISTS ESC"})
    httpx.post(f"{base}/sql", headers=auth, json={"sql": "CREATE STAGE IF NOT EXISTS ESC.PUBLIC.S"})
    files = f"{base}/databases/ESC/schemas/PUBLIC/stages/S/files"
    for bad in ("%2E%2E/%2E%2E/token", "a/%2E%2E/%2E%2E/%2E%2E/token", "a%5C..%5Cb"):
        for method in ("GET", "PUT", "DELETE"):
            response = httpx.request(method, f"{files}/{bad}", headers=auth, content=b"x")
            assert_error_body(response, 400, "invalid_stage_path")
    assert_error_body(httpx.get(files, headers=auth, params={"path": "../"}), 400, "invalid_stage_path")
    # A stage named ".." is an ordinary name: its files stay inside the storage root.
    assert (
        httpx.post(f"{base}/sql", headers=auth, json={"sql": 'CREATE STAGE ESC.PUBLIC.".."'}).status_code
        == 200
    )
    put = httpx.put(
        f"{base}/databases/ESC/schemas/PUBLIC/stages/%2E%2E/files/f.txt", headers=auth, content=b"hi"
    )
    assert put.status_code == 201, put.text
    assert not (server_process.home / "storage" / "stages" / "ESC" / "f.txt").exists()


@pytest.mark.parametrize("path", ["/api/v1/shards", "/api/v1/jobs"])
def test_a_shard_token_cannot_use_user_routes(server_process: ServerProcess, path: str) -> None:
    response = httpx.get(server_process.url + path, headers={"Authorization": "Bearer rbs_unknown"})
    assert_error_body(response, 401, "unauthenticated")
