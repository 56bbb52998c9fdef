"""Every failure of a real app answers the one error body, and a 500 leaks nothing."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI, HTTPException

from server.app import create_app
from server.auth.tokens import ROLE_ADMIN, create_token
from server.control_plane import ControlPlane

SECRET = "s3cr3t-password-in-a-message"


class Client:
    """Requests to a real app in this process, over ASGI (the app's own error handling included)."""

    def __init__(self, app: FastAPI, token: str) -> None:
        self.app, self.token = app, token

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)
            headers = {"Authorization": f"Bearer {self.token}", **kwargs.pop("headers", {})}
            async with httpx.AsyncClient(transport=transport, base_url="http://app") as http:
                return await http.request(method, path, headers=headers, **kwargs)

        return anyio.run(send)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, **kwargs)


@pytest.fixture
def client(cp: ControlPlane) -> Client:
    app = create_app(cp)

    # Routes that fail on purpose, added to the real app: an unexpected exception and a 413.
    @app.get("/api/v1/test-crash")
    def crash() -> None:
        raise RuntimeError(f"connection to postgres://admin:{SECRET}@db failed")

    @app.put("/api/v1/test-too-large")
    def too_large() -> None:
        raise HTTPException(413, "The request body is larger than 1 MiB.")

    with cp.sessionmaker() as session:
        token = create_token(session, name="t", role=ROLE_ADMIN)
        session.commit()
    return Client(app, token)


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert list(body) == ["error"] and sorted(body["error"]) == ["code", "message"]
    assert body["error"]["code"] == code
    return str(body["error"]["message"])


def test_unknown_route_wrong_method_validation_and_too_large(client: Client) -> None:
    assert _error(client.get("/api/v1/no/such/route"), 404, "not_found") == "Not Found"
    assert _error(client.get("/nowhere"), 404, "not_found") == "Not Found"
    assert _error(client.patch("/api/v1/jobs"), 405, "method_not_allowed") == "Method Not Allowed"
    message = _error(client.get("/api/v1/jobs", params={"limit": "many"}), 422, "invalid_argument")
    assert (
        message
        == "Invalid request: query.limit: Input should be a valid integer, unable to parse string as an integer"
    )
    message = _error(
        client.post("/api/v1/jobs", content=b"{not json", headers={"Content-Type": "application/json"}),
        422,
        "invalid_argument",
    )
    assert message == "Invalid request: 1: JSON decode error"
    assert (
        _error(client.put("/api/v1/test-too-large"), 413, "too_large")
        == "The request body is larger than 1 MiB."
    )


def test_an_unexpected_exception_is_internal_and_leaks_nothing(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="runbatch.server"):
        response = client.get("/api/v1/test-crash")
    message = _error(response, 500, "internal")
    assert message.startswith("Internal server error (incident ") and message.endswith(
        "); see the server log."
    )
    assert (
        SECRET not in response.text
        and "Traceback" not in response.text
        and "RuntimeError" not in response.text
    )
    incident = message.split("incident ")[1].split(")")[0]
    # The server log has the traceback, under the incident the caller was told.
    assert any(incident in r.getMessage() and r.exc_info for r in caplog.records)


def test_values_the_database_cannot_store_are_the_callers_error(client: Client) -> None:
    worker = {
        "name": "h:1",
        "host": "h",
        "pools": ["*"],
        "executor": "process",
        "slots": 2**70,
        "cpus": 1,
        "memory_bytes": 1,
        "gpus": 0,
    }
    message = _error(client.post("/api/v1/workers", json=worker), 400, "invalid_argument")
    assert message.startswith("A value in the request cannot be stored: a number is out of range")
    message = _error(
        client.post(
            "/api/v1/workers",
            content=b'{"name": "\\ud800", "host": "h", "pools": ["*"], "executor": "p", '
            b'"slots": 1, "cpus": 1, "memory_bytes": 1, "gpus": 0}',
            headers={"Content-Type": "application/json"},
        ),
        400,
        "invalid_argument",
    )
    assert "invalid Unicode" in message
    assert client.get("/api/v1/workers").status_code == 200
