"""The client turns the one error body into the exception tree (httpx MockTransport as the seam)."""

from __future__ import annotations

import httpx
import pytest

from runbatch import errors
from runbatch.client import ControlPlaneClient


def _client(status: int, body: object) -> ControlPlaneClient:
    return ControlPlaneClient(
        "http://cp",
        "t",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, json=body)),
        retries=0,
    )


@pytest.mark.parametrize(
    ("status", "code", "cls", "builtin"),
    [
        (404, "not_found", errors.NotFoundError, ValueError),
        (409, "output_not_empty", errors.OutputExistsError, FileExistsError),
        (400, "invalid_argument", errors.InvalidArgumentError, ValueError),
        (401, "unauthenticated", errors.AuthenticationError, PermissionError),
        (400, "unsupported", errors.UnsupportedError, NotImplementedError),
        (503, "unavailable", errors.ServiceUnavailableError, RuntimeError),
        (500, "something_new", errors.InternalError, RuntimeError),
    ],
)
def test_error_body_maps_to_exception(
    status: int, code: str, cls: type[Exception], builtin: type[Exception]
) -> None:
    with pytest.raises(cls) as exc:
        _client(status, {"error": {"code": code, "message": "why"}}).get_job("D", "S", "J")
    assert isinstance(exc.value, builtin) and isinstance(exc.value, errors.RunbatchError)
    assert str(exc.value) == "why"


def test_unparseable_error_and_unreachable_server() -> None:
    with pytest.raises(errors.InternalError, match="HTTP 502"):
        _client(502, "bad gateway").get_job("D", "S", "J")
    client = ControlPlaneClient("http://127.0.0.1:9", "t", retries=0)
    with pytest.raises(
        errors.TransportError, match="Cannot reach the runbatch control plane at http://127.0.0.1:9"
    ):
        client.get_job("D", "S", "J")


def test_idempotent_calls_retry_503() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) < 3:
            return httpx.Response(503, json={"error": {"code": "unavailable", "message": "db down"}})
        return httpx.Response(200, json={"data": [], "count": 0})

    client = ControlPlaneClient("http://cp", "t", transport=httpx.MockTransport(handler), retries=3)
    assert client.list_jobs().count == 0
    assert calls == ["GET", "GET", "GET"]
