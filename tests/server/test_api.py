"""The REST API of a real `runbatch server`: one error body, stage confinement, shard tokens.

Every route's authentication is walked in tests/e2e/test_rest_api.py."""

from __future__ import annotations

import io
import socket
import tarfile
import time

import httpx
import pytest

from tests.services import ServerProcess


def assert_error_body(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and sorted(body["error"]) == ["code", "message"]
    assert body["error"]["code"] == code
    message: str = body["error"]["message"]
    assert message
    return message


def test_errors_share_one_body(server_process: ServerProcess) -> None:
    auth = {"Authorization": f"Bearer {server_process.token}"}
    base = server_process.url + "/api/v1"
    assert_error_body(httpx.get(f"{base}/databases/NOPE", headers=auth), 404, "not_found")
    assert_error_body(httpx.get(f"{base}/no/such/route", headers=auth), 404, "not_found")
    assert_error_body(httpx.post(f"{base}/sql", headers=auth, json={}), 422, "invalid_argument")
    assert_error_body(
        httpx.post(f"{base}/sql", headers=auth, json={"sql": "CREATE TASK T"}), 400, "unsupported"
    )
    # A query answers Arrow only: a client that does not accept it is told what to send.
    message = assert_error_body(
        httpx.post(f"{base}/sql", headers=auth, json={"sql": "SELECT 1"}), 400, "invalid_argument"
    )
    assert (
        message
        == "A query's rows stream as Arrow IPC: send 'Accept: application/vnd.apache.arrow.stream' (the runbatch SDK does)."
    )
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


def test_an_interrupted_upload_stores_nothing(server_process: ServerProcess) -> None:
    auth = {"Authorization": f"Bearer {server_process.token}"}
    base = server_process.url + "/api/v1"
    httpx.post(f"{base}/sql", headers=auth, json={"sql": "CREATE DATABASE IF NOT EXISTS UPL"})
    httpx.post(f"{base}/sql", headers=auth, json={"sql": "CREATE STAGE IF NOT EXISTS UPL.PUBLIC.S"})
    files = f"{base}/databases/UPL/schemas/PUBLIC/stages/S/files"
    head = (
        f"PUT /api/v1/databases/UPL/schemas/PUBLIC/stages/S/files/big.bin HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nAuthorization: Bearer {server_process.token}\r\n"
        f"Content-Length: {10 << 20}\r\n\r\n"
    ).encode()
    stage_dir = server_process.home / "storage" / "stages" / "UPL"

    def stored() -> list[str]:
        return sorted(p.name for p in stage_dir.rglob("*") if p.is_file())

    with socket.create_connection(("127.0.0.1", server_process.port)) as sock:
        sock.sendall(head + b"x" * (1 << 20))  # a tenth of what it announced, then the client dies
        deadline = time.monotonic() + 10
        while not stored():  # the server is writing it (under a temporary name)
            assert time.monotonic() < deadline
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while stored() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert stored() == []  # neither a truncated big.bin nor its temporary file
    assert httpx.get(files, headers=auth).json() == []


def test_a_model_archive_that_escapes_is_refused(server_process: ServerProcess) -> None:
    auth = {"Authorization": f"Bearer {server_process.token}"}
    base = server_process.url + "/api/v1"
    httpx.post(f"{base}/sql", headers=auth, json={"sql": "CREATE DATABASE IF NOT EXISTS TARS"})
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        member = tarfile.TarInfo("../evil.txt")
        member.size = 4
        tar.addfile(member, io.BytesIO(b"evil"))
    response = httpx.post(
        f"{base}/databases/TARS/schemas/PUBLIC/models/M/versions", headers=auth, content=archive.getvalue()
    )
    message = assert_error_body(response, 400, "invalid_argument")
    assert message == "Model archive member '../evil.txt' would be written outside the archive's folder."
    assert not (server_process.home / "storage" / "registry" / "TARS").exists() or not [
        p for p in (server_process.home / "storage" / "registry" / "TARS").rglob("*") if p.is_file()
    ]
