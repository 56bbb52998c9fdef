"""The model service's inference server: Snowflake's row protocol, without Docker."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

from runbatch.inference.function import ModelFunction
from runbatch.ml.model._signatures.core import DataType, FeatureSpec, ModelSignature, ParamSpec
from runbatch.runtime.inference_server import InferenceApp, Reply, function_path, serve

SIGNATURE = ModelSignature(
    inputs=[FeatureSpec("A", DataType.DOUBLE), FeatureSpec("B", DataType.INT64)],
    outputs=[FeatureSpec("SUM", DataType.DOUBLE), FeatureSpec("LABEL", DataType.STRING)],
    params=[ParamSpec("scale", DataType.DOUBLE, 1.0)],
)


class Recorder:
    """A model function that records the batch sizes it was called with."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def __call__(self, frame: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        self.calls.append(len(frame))
        if (frame["A"] < 0).any():
            raise ValueError("negative input")
        total = (frame["A"] + frame["B"]) * params["scale"]
        return pd.DataFrame({"SUM": total, "LABEL": [f"row{int(b)}" for b in frame["B"]]})


@pytest.fixture
def model() -> Recorder:
    return Recorder()


@pytest.fixture
def app(model: Recorder) -> InferenceApp:
    fn = ModelFunction("predict_sum", SIGNATURE, model, "FUNCTION", False)
    return InferenceApp({"predict_sum": fn}, max_batch_rows=2, num_workers=1)


def _post(app: InferenceApp, path: str, payload: Any) -> Reply:
    return app.handle("POST", path, json.dumps(payload).encode())


def test_rows_are_answered_by_index_with_named_outputs_in_batches_of_max_batch_rows(
    app: InferenceApp, model: Recorder
) -> None:
    reply = _post(app, "/predict-sum", {"data": [[7, 1.5, 2], [3, 0.25, 4], [0, 2.0, 1]]})

    assert reply == Reply(
        200,
        {
            "data": [
                [7, {"SUM": 3.5, "LABEL": "row2"}],
                [3, {"SUM": 4.25, "LABEL": "row4"}],
                [0, {"SUM": 3.0, "LABEL": "row1"}],
            ]
        },
    )
    assert model.calls == [2, 1]


def test_trailing_parameters_and_the_wide_format(app: InferenceApp) -> None:
    flat = _post(app, "/predict_sum", {"data": [[0, 1.0, 1, 10.0], [1, 1.0, 2]]})
    wide = _post(app, "/PREDICT-SUM", {"data": [[0, {"a": 1.0, "B": 1, "SCALE": 3.0}]]})

    assert flat.body["data"] == [[0, {"SUM": 20.0, "LABEL": "row1"}], [1, {"SUM": 3.0, "LABEL": "row2"}]]
    assert wide.body["data"] == [[0, {"SUM": 6.0, "LABEL": "row1"}]]


def test_bad_requests_say_what_to_send(app: InferenceApp) -> None:
    assert app.handle("POST", "/predict-sum", b"not json").status == 400
    assert _post(app, "/predict-sum", {"rows": []}).body == {
        "error": 'The request body must be {"data": [[row_index, arg1, arg2, ...], ...]} (Snowflake\'s service '
        "function format)."
    }
    assert _post(app, "/predict-sum", {"data": [[0, 1.0]]}).body == {
        "error": "Row 0 has 1 argument(s) after its index; the function takes 2 to 3: the inputs ['A', 'B'] then "
        "the parameters ['scale']."
    }
    assert _post(app, "/predict-sum", {"data": [["x", 1.0, 2]]}).status == 400
    assert _post(app, "/predict-sum", {"data": [[0, {"A": 1.0}]]}).body == {
        "error": "Row 0 has no value for input(s) ['B']; the inputs are ['A', 'B']."
    }
    assert _post(app, "/nope", {"data": []}) == Reply(
        404, {"error": "No function at /nope; this model serves /predict-sum (POST) and /health."}
    )
    assert app.handle("PUT", "/predict-sum", b"").status == 405


def test_a_model_error_is_a_500_that_names_it(app: InferenceApp) -> None:
    assert _post(app, "/predict-sum", {"data": [[0, -1.0, 1]]}) == Reply(
        500, {"error": "Function predict_sum failed: ValueError: negative input"}
    )


def test_health_and_the_function_list(app: InferenceApp) -> None:
    assert app.handle("GET", "/health", b"") == Reply(200, {"status": "ready"})
    assert app.handle("GET", "/", b"").body == {
        "functions": [
            {
                "name": "predict_sum",
                "path": "/predict-sum",
                "inputs": ["A", "B"],
                "outputs": ["SUM", "LABEL"],
                "params": ["scale"],
            }
        ]
    }
    assert function_path("PREDICT_PROBA") == "/predict-proba"


@pytest.fixture
def server(app: InferenceApp) -> Iterator[str]:
    httpd = serve(app, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_over_http(server: str) -> None:
    with httpx.Client(base_url=server, timeout=10) as client:
        assert client.get("/health").json() == {"status": "ready"}
        answer = client.post("/predict-sum", json={"data": [[0, 1.0, 2]]})
        assert (answer.status_code, answer.json()) == (200, {"data": [[0, {"SUM": 3.0, "LABEL": "row2"}]]})
        assert client.post("/predict-sum", content=b"{").status_code == 400


def _raw(server: str, request: bytes) -> tuple[int, dict[str, Any]]:
    """One request on its own socket, as sent (httpx would fix the headers); the status and JSON body."""
    host, port = server.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_a_post_without_a_usable_content_length_is_refused(server: str) -> None:
    post = b"POST /predict-sum HTTP/1.1\r\nHost: x\r\n"
    assert _raw(server, post + b"Content-Length: -1\r\n\r\n") == (
        400,
        {"error": "Content-Length '-1' is not a byte count; send the body's length in bytes."},
    )
    assert _raw(server, post + b"Content-Length: ten\r\n\r\n")[0] == 400
    assert _raw(server, post + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n") == (
        411,
        {"error": "The request has no Content-Length header; send the JSON body with its length."},
    )
    assert _raw(server, post + b"Content-Length: 268435457\r\n\r\n") == (
        413,
        {"error": "The request body is over 256 MiB; send fewer rows."},
    )
    assert _raw(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == (
        200,
        {"status": "ready"},
    )


def test_connections_beyond_the_bound_wait_for_a_free_thread(app: InferenceApp) -> None:
    httpd = serve(app, "127.0.0.1", 0, max_connections=1)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}"
    answers: list[int] = []
    try:
        idle = socket.create_connection(("127.0.0.1", httpd.server_address[1]))  # holds the one thread
        waiting = threading.Thread(
            target=lambda: answers.append(httpx.get(url + "/health", timeout=10).status_code)
        )
        waiting.start()
        waiting.join(0.5)
        assert answers == []
        idle.close()
        waiting.join(10)
        assert answers == [200]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _chat_app(seen: list[tuple[Any, dict[str, Any]]]) -> InferenceApp:
    from runbatch.ml.model.openai_signatures import OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC

    def chat(frame: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        seen.append((frame["messages"].tolist(), params))
        text = frame["messages"][0][-1]["content"].upper()
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        return pd.DataFrame(
            {
                "id": ["chatcmpl-1"],
                "object": ["chat.completion"],
                "created": [1.0],
                "model": ["tiny"],
                "choices": [json.dumps([choice])],
                "usage": [{"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3}],
            }
        )

    fn = ModelFunction("__call__", OPENAI_CHAT_WITH_PARAMS_SIGNATURE_SPEC, chat, "FUNCTION", False)
    return InferenceApp({"__call__": fn})


def test_openai_chat_completions_over_the_chat_function() -> None:
    seen: list[tuple[Any, dict[str, Any]]] = []
    app = _chat_app(seen)
    messages = [{"role": "user", "content": "hi"}]
    request = {"model": "tiny", "messages": messages, "max_tokens": 5, "temperature": 0.5}

    reply = app.handle("POST", "/v1/chat/completions", json.dumps(request).encode())

    assert reply == Reply(
        200,
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1.0,
            "model": "tiny",
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "HI"}, "finish_reason": "stop"}
            ],
            "usage": {"completion_tokens": 1, "prompt_tokens": 2, "total_tokens": 3},
        },
    )
    ((rows, params),) = seen
    assert rows == [messages]
    assert (params["max_completion_tokens"], params["temperature"]) == (5, 0.5)
    unknown = app.handle(
        "POST", "/v1/chat/completions", json.dumps({"messages": messages, "seed": 1}).encode()
    )
    assert unknown.status == 400 and "Unknown parameter(s) ['seed']" in unknown.body["error"]
    streamed = app.handle(
        "POST", "/v1/chat/completions", json.dumps({"messages": messages, "stream": True}).encode()
    )
    assert streamed.status == 400


def test_chat_on_a_model_without_one_is_refused(app: InferenceApp) -> None:
    reply = app.handle("POST", "/v1/chat/completions", b'{"messages": []}')
    assert reply == Reply(
        400,
        {
            "error": "This model has no chat function (one whose input is an OpenAI `messages` column); POST rows "
            "to /predict-sum."
        },
    )
