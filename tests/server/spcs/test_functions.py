"""The batching protocol of service functions, against a fake endpoint (the real one: tests/e2e/test_services.py)."""

from __future__ import annotations

import json
import threading
from typing import Any

import httpx
import pytest

from runbatch.errors import InvalidArgumentError, ServiceUnavailableError
from server.spcs.functions import call_batches

URL = "http://svc/upper"


class Endpoint:
    """Answers Snowflake's protocol in reverse row order; fails the first ``failures`` calls with 503."""

    def __init__(self, failures: int = 0, answer: Any = None) -> None:
        self.failures = failures
        self.answer = answer
        self.batches: list[list[list[Any]]] = []
        self._lock = threading.Lock()

    def __call__(self, url: str, *, json: dict[str, Any], timeout: float) -> httpx.Response:
        request = httpx.Request("POST", url)
        with self._lock:
            if self.failures:
                self.failures -= 1
                return httpx.Response(503, text="busy", request=request)
            self.batches.append(json["data"])
        if self.answer is not None:
            return httpx.Response(200, content=self.answer, request=request)
        data = [[i, f"{a.upper()}{b}"] for i, a, b in reversed(json["data"])]
        return httpx.Response(200, json={"data": data}, request=request)


def test_rows_go_in_batches_and_come_back_in_order() -> None:
    endpoint = Endpoint()
    words = [f"w{i}" for i in range(2_500)]

    values = call_batches(URL, [words, list(range(2_500))], 1_000, endpoint)

    assert values == [f"W{i}{i}" for i in range(2_500)]
    assert sorted(len(b) for b in endpoint.batches) == [500, 1_000, 1_000]
    assert sorted(b[0][0] for b in endpoint.batches) == [0, 1_000, 2_000]


def test_a_5xx_is_retried() -> None:
    endpoint = Endpoint(failures=2)
    assert call_batches(URL, [["a"], [1]], 10, endpoint) == ["A1"]


def test_a_batch_failing_every_time_fails_the_query() -> None:
    with pytest.raises(ServiceUnavailableError, match="answered HTTP 503 3 times: busy"):
        call_batches(URL, [["a"], [1]], 10, Endpoint(failures=5))


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"not json", r"must answer JSON \{\"data\": \[\[row_index, value\], ...\]\}"),
        (
            json.dumps({"data": [[0]]}).encode(),
            r"answered a row as \[0\]; each row must be \[row_index, value\]",
        ),
        (
            json.dumps({"data": [[5, "x"]]}).encode(),
            r"answered rows \[0, 5\] that do not match the 1 rows sent",
        ),
    ],
)
def test_malformed_answers_are_named(answer: bytes, message: str) -> None:
    with pytest.raises(InvalidArgumentError, match=message):
        call_batches(URL, [["a"], [1]], 10, Endpoint(answer=answer))
