"""The online inference server of a model service: ``python -m runbatch.runtime.inference_server``.

A model service (``ModelVersion.create_service``) runs this in the runtime image. It loads the
model version once (from ``RUNBATCH_MODEL_DIR``, the version folder the worker copied in) and
answers, on ``RUNBATCH_PORT_5000``:

- ``POST /<function>`` (``predict``, or ``predict-proba`` for ``predict_proba``, as Snowflake's
  inference server names them): Snowflake's protocol. Rows come as
  ``{"data": [[row_index, arg1, arg2, ...], ...]}`` with the arguments in the signature's input
  order, optionally followed by the signature's parameters, or as ``[[row_index, {name: value}]]``;
  the answer is ``{"data": [[row_index, {output: value, ...}], ...]}``.
- ``POST /v1/chat/completions``: OpenAI's chat completions, for a chat model (a function that takes
  ``messages``); the request's settings become the function's parameters or input columns.
- ``GET /health``: 200 once the model is loaded (the service's readiness probe).
- ``GET /``: the functions and their paths.

Requests are answered by a thread each, at most ``MAX_CONNECTIONS`` connections at once (more wait
in the listen backlog, and an idle connection is closed after ``IDLE_TIMEOUT_S``); at most
``RUNBATCH_NUM_WORKERS`` model calls run at once and one call holds at most
``RUNBATCH_MAX_BATCH_ROWS`` rows, so a large request cannot hold the model for everyone else longer
than a batch. A POST must say its Content-Length (411 otherwise; chunked bodies are not read).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd

from runbatch.inference.function import ModelFunction, to_json_value
from runbatch.ml.model._signatures.validate import resolve_params

__all__ = [
    "CHAT_PATH",
    "DEFAULT_PORT",
    "HEALTH_PATH",
    "IDLE_TIMEOUT_S",
    "MAX_CONNECTIONS",
    "InferenceApp",
    "Reply",
    "function_path",
    "serve",
    "load_functions",
    "main",
]

log = logging.getLogger("runbatch.runtime")

DEFAULT_PORT = 5000  # the port of Snowflake's model inference endpoint
HEALTH_PATH = "/health"
CHAT_PATH = "/v1/chat/completions"
_MAX_BODY = 256 << 20
# Connections served at once, each by a thread: enough for many callers waiting on the model's few
# slots, few enough that a flood of connections cannot exhaust the container's threads or memory.
MAX_CONNECTIONS = 64
IDLE_TIMEOUT_S = 120.0  # a connection that sends nothing for this long gives its thread back


def function_path(name: str) -> str:
    """The path of a function: lower case, ``_`` as ``-`` (``PREDICT_PROBA`` -> ``/predict-proba``)."""
    return "/" + name.lower().replace("_", "-")


def _key(path: str) -> str:
    return path.strip("/").lower().replace("_", "-")


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]


class RequestError(Exception):
    """A request the server cannot answer as sent (400): the message says what to send instead."""


class InferenceApp:
    """Snowflake's inference protocol over loaded model functions, without the HTTP plumbing."""

    def __init__(
        self,
        functions: Mapping[str, ModelFunction],
        *,
        max_batch_rows: int | None = None,
        num_workers: int = 1,
    ) -> None:
        if max_batch_rows is not None and max_batch_rows < 1:
            raise ValueError(f"max_batch_rows must be at least 1, not {max_batch_rows}.")
        self.functions = {_key(name): fn for name, fn in functions.items()}
        self.max_batch_rows = max_batch_rows
        self._slots = threading.BoundedSemaphore(max(1, num_workers))

    def handle(self, method: str, path: str, body: bytes) -> Reply:
        path = path.split("?", 1)[0]
        if method == "GET":
            if path == HEALTH_PATH:
                return Reply(200, {"status": "ready"})
            if path in ("", "/"):
                return Reply(200, {"functions": [self._describe(k, fn) for k, fn in self.functions.items()]})
            return self._unknown(path)
        if method != "POST":
            return Reply(405, {"error": f"{method} is not supported; POST rows to a function's path."})
        if path.rstrip("/") == CHAT_PATH:
            return self._guarded(lambda: self.chat(body))
        fn = self.functions.get(_key(path))
        if fn is None:
            return self._unknown(path)
        return self._guarded(lambda: Reply(200, {"data": self.infer(fn, _parse_body(body))}), fn.method)

    @staticmethod
    def _guarded(answer: Callable[[], Reply], method: str = "chat") -> Reply:
        try:
            return answer()
        except RequestError as exc:
            return Reply(400, {"error": str(exc)})
        except Exception as exc:  # the model raised: the caller sees why, the log has the traceback
            log.exception("function %s failed", method)
            return Reply(500, {"error": f"Function {method} failed: {type(exc).__name__}: {exc}"})

    def chat(self, body: bytes) -> Reply:
        """OpenAI's ``POST /v1/chat/completions`` over the model's chat function (one taking ``messages``)."""
        chats = [fn for fn in self.functions.values() if "messages" in [f.name for f in fn.signature.inputs]]
        if not chats:
            raise RequestError(
                "This model has no chat function (one whose input is an OpenAI `messages` column); POST rows to "
                + ", ".join("/" + k for k in self.functions)
                + "."
            )
        fn = chats[0]
        try:
            payload = json.loads(body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RequestError(f"The request body is not JSON: {exc}.") from None
        if not isinstance(payload, dict) or not isinstance(payload.get("messages"), list):
            raise RequestError(
                'The request body must be an OpenAI chat request: {"messages": [{"role": "user", "content": '
                '"..."}], ...}.'
            )
        if payload.get("stream"):
            raise RequestError("stream=true is not supported: the answer comes whole. Leave stream unset.")
        knobs = {k: v for k, v in payload.items() if k not in ("model", "messages", "stream")}
        if "max_tokens" in knobs and "max_completion_tokens" not in knobs:
            knobs["max_completion_tokens"] = knobs.pop("max_tokens")  # the older OpenAI name
        inputs = [f.name for f in fn.signature.inputs]
        params = {p.name.lower(): p.name for p in fn.signature.params}
        row: dict[str, list[Any]] = {"messages": [payload["messages"]]}
        for name in inputs:
            if name != "messages":
                row[name] = [knobs.pop(name, None)]
        given = {params[k.lower()]: knobs.pop(k) for k in list(knobs) if k.lower() in params}
        if knobs:
            accepted = sorted({*inputs, *params.values()} - {"messages"})
            raise RequestError(f"Unknown parameter(s) {sorted(knobs)}; this model takes {accepted}.")
        try:
            resolved = resolve_params(given, fn.signature.params)
        except (KeyError, TypeError, ValueError) as exc:
            raise RequestError(f"Invalid parameters {given}: {exc}") from None
        with self._slots:
            out = fn(pd.DataFrame(row), resolved)
        (record,) = _records(out, [f.name for f in fn.signature.outputs])
        # Grouped outputs may come back as JSON text (as batch jobs write them); OpenAI sends objects.
        return Reply(200, {k: _json_text(v) for k, v in record.items()})

    def _unknown(self, path: str) -> Reply:
        paths = ", ".join("/" + k for k in self.functions)
        return Reply(
            404, {"error": f"No function at {path}; this model serves {paths} (POST) and {HEALTH_PATH}."}
        )

    @staticmethod
    def _describe(key: str, fn: ModelFunction) -> dict[str, Any]:
        return {
            "name": fn.method,
            "path": "/" + key,
            "inputs": [f.name for f in fn.signature.inputs],
            "outputs": [f.name for f in fn.signature.outputs],
            "params": [p.name for p in fn.signature.params],
        }

    def infer(self, fn: ModelFunction, rows: list[list[Any]]) -> list[list[Any]]:
        """Answer rows ``[index, args...]`` with ``[index, {output: value}]``, in the order received."""
        inputs = [f.name for f in fn.signature.inputs]
        params = [p.name for p in fn.signature.params]
        indexes: list[Any] = []
        # Rows that pass the same parameter values are one model call (mv.run sends one set).
        groups: dict[str, tuple[dict[str, Any], list[int]]] = {}
        columns: dict[str, list[Any]] = {name: [] for name in inputs}
        for position, row in enumerate(rows):
            values, given = _split_row(row, position, inputs, params)
            indexes.append(row[0])
            for name, value in zip(inputs, values, strict=True):
                columns[name].append(value)
            key = json.dumps(given, sort_keys=True, default=str)
            groups.setdefault(key, (given, []))[1].append(position)
        frame = pd.DataFrame(columns)
        answers: list[dict[str, Any] | None] = [None] * len(rows)
        for given, positions in groups.values():
            try:
                resolved = resolve_params(given, fn.signature.params)
            except (KeyError, TypeError, ValueError) as exc:
                raise RequestError(f"Invalid parameters {given}: {exc}") from None
            part = frame.iloc[positions].reset_index(drop=True)
            for start in range(0, len(part), self.max_batch_rows or max(1, len(part))):
                chunk = part.iloc[start : start + (self.max_batch_rows or len(part))].reset_index(drop=True)
                with self._slots:
                    out = fn(chunk, resolved)
                records = _records(out, [f.name for f in fn.signature.outputs])
                for offset, record in enumerate(records):
                    answers[positions[start + offset]] = record
        return [[index, answer] for index, answer in zip(indexes, answers, strict=True)]


def _parse_body(body: bytes) -> list[list[Any]]:
    try:
        payload = json.loads(body or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RequestError(
            f'The request body is not JSON ({exc}); send {{"data": [[0, arg1, ...], ...]}}.'
        ) from None
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise RequestError(
            'The request body must be {"data": [[row_index, arg1, arg2, ...], ...]} (Snowflake\'s service '
            "function format)."
        )
    rows: list[list[Any]] = payload["data"]
    return rows


def _split_row(
    row: Any, position: int, inputs: list[str], params: list[str]
) -> tuple[list[Any], dict[str, Any]]:
    """A row's input values in signature order and the parameters it passes."""
    if not isinstance(row, list) or not row or not isinstance(row[0], int) or isinstance(row[0], bool):
        raise RequestError(
            f"Row {position} is {json.dumps(row, default=str)[:200]}; each row is [row_index, arg1, arg2, ...] "
            "with an integer row_index first."
        )
    args = row[1:]
    if (
        len(args) == 1
        and isinstance(args[0], dict)
        and not (len(inputs) == 1 and not _names_in(args[0], inputs))
    ):
        # The wide format: [row_index, {input: value, ..., param: value}].
        by_name = {str(k).upper(): v for k, v in args[0].items()}
        missing = [n for n in inputs if n.upper() not in by_name]
        if missing:
            raise RequestError(
                f"Row {position} has no value for input(s) {missing}; the inputs are {inputs}."
            )
        given = {p: by_name[p.upper()] for p in params if p.upper() in by_name}
        return [by_name[n.upper()] for n in inputs], given
    if len(args) < len(inputs) or len(args) > len(inputs) + len(params):
        expected = f"{len(inputs)}" + (f" to {len(inputs) + len(params)}" if params else "")
        raise RequestError(
            f"Row {position} has {len(args)} argument(s) after its index; the function takes {expected}: the "
            f"inputs {inputs}" + (f" then the parameters {params}" if params else "") + "."
        )
    return args[: len(inputs)], dict(zip(params, args[len(inputs) :], strict=False))


def _names_in(values: dict[str, Any], inputs: list[str]) -> bool:
    wanted = {n.upper() for n in inputs}
    return any(str(k).upper() in wanted for k in values)


def _json_text(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _records(out: pd.DataFrame, names: list[str]) -> list[dict[str, Any]]:
    columns = [[to_json_value(v) for v in out[name].tolist()] for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)] if names else []


# -- loading and serving ---------------------------------------------------------------------------


def load_functions(model_dir: Path, engine: str | None, engine_args: list[str]) -> dict[str, ModelFunction]:
    """The model's row functions (table functions are for batch jobs), in the engine asked for."""
    from runbatch.inference import LoadedModel

    if engine == "vllm":
        from runbatch.packager.meta import ModelMeta
        from runbatch.runtime.engines.vllm import vllm_function

        meta = ModelMeta.read(model_dir / "model")
        return {m: vllm_function(model_dir, m, engine_args) for m in meta.signatures}
    loaded = LoadedModel.from_dir(model_dir)
    functions = {m: loaded.function(m) for m in loaded.meta.signatures}
    return {m: fn for m, fn in functions.items() if fn.function_type == "FUNCTION"}


def _handler(app: InferenceApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        timeout = IDLE_TIMEOUT_S

        def _answer(self, method: str) -> None:
            length, refusal = _content_length(method, self.headers.get("Content-Length"))
            if refusal is not None:
                reply = refusal
                # The body (if any) was not read, so the connection cannot carry another request.
                self.close_connection = True
            else:
                reply = app.handle(method, self.path, self.rfile.read(length) if length else b"")
            data = json.dumps(reply.body).encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            self._answer("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._answer("POST")

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one line per request would drown the service's log; failures are logged by handle()

    return Handler


def _content_length(method: str, value: str | None) -> tuple[int, Reply | None]:
    """The body length a request announces, or the reply refusing it (411, 400 or 413)."""
    if value is None:
        if method == "POST":
            return 0, Reply(
                411,
                {"error": "The request has no Content-Length header; send the JSON body with its length."},
            )
        return 0, None
    try:
        length = int(value)
    except ValueError:
        length = -1
    if length < 0:
        return 0, Reply(
            400,
            {"error": f"Content-Length {value[:40]!r} is not a byte count; send the body's length in bytes."},
        )
    if length > _MAX_BODY:
        return 0, Reply(413, {"error": f"The request body is over {_MAX_BODY >> 20} MiB; send fewer rows."})
    return length, None


class _BoundedServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them: the accept loop waits for a free
    one, leaving further connections in the listen backlog rather than starting threads without end."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], max_connections: int
    ) -> None:
        super().__init__(address, handler)
        self._connections = threading.BoundedSemaphore(max_connections)
        self._closing = threading.Event()

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._connections.acquire(timeout=0.5):
            if self._closing.is_set():  # shutdown() waits for this loop
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._connections.release()  # no thread started to give it back
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def shutdown(self) -> None:
        self._closing.set()
        super().shutdown()


def serve(
    app: InferenceApp, host: str, port: int, max_connections: int = MAX_CONNECTIONS
) -> ThreadingHTTPServer:
    """A bound server (port 0 picks a free one); ``serve_forever`` answers requests."""
    return _BoundedServer((host, port), _handler(app), max_connections)


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("RUNBATCH_RUNTIME_LOG_LEVEL", "INFO").upper(),
        stream=sys.stdout,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    model_dir = Path(os.environ.get("RUNBATCH_MODEL_DIR", "/runbatch/model"))
    if not (model_dir / "MANIFEST.yml").exists() and not (model_dir / "model").is_dir():
        log.error(
            "No model version in %s (RUNBATCH_MODEL_DIR); the service's model volume is missing.", model_dir
        )
        return 2
    engine = os.environ.get("RUNBATCH_INFERENCE_ENGINE") or None
    engine_args = json.loads(os.environ.get("RUNBATCH_INFERENCE_ENGINE_ARGS") or "[]")
    max_batch_rows = (
        int(os.environ["RUNBATCH_MAX_BATCH_ROWS"]) if os.environ.get("RUNBATCH_MAX_BATCH_ROWS") else None
    )
    num_workers = int(os.environ.get("RUNBATCH_NUM_WORKERS") or 1)
    started = time.monotonic()
    functions = load_functions(model_dir, engine, engine_args)
    log.info("Model loaded in %.2fs; functions: %s.", time.monotonic() - started, ", ".join(functions))
    app = InferenceApp(functions, max_batch_rows=max_batch_rows, num_workers=num_workers)
    port = int(os.environ.get(f"RUNBATCH_PORT_{DEFAULT_PORT}", str(DEFAULT_PORT)))
    # Only the worker's host when the control plane reaches services on loopback (the same host); else
    # every address, because the worker's readiness probe comes over loopback and the proxy does not.
    service_host = os.environ.get("RUNBATCH_SERVICE_HOST", "127.0.0.1")
    host = service_host if service_host.startswith("127.") or service_host == "localhost" else "0.0.0.0"
    server = serve(app, host, port)
    print(f"Serving {', '.join(function_path(m) for m in functions)} on {host}:{port}.", flush=True)  # noqa: T201
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
