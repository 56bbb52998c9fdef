"""The client side of model services: ``create_service``, ``list_services``, ``delete_service`` and
``run(X, service_name=...)``.

``run`` through a service goes through the same code as a local ``run`` (validation, column
matching, typed outputs); only the model call itself is replaced by requests to the service's
inference server, through the control plane, in Snowflake's ``{"data": [[row_index, args...]]}``
protocol. So a service answers with the same DataFrame type, columns and values as a local run.
"""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from runbatch.errors import InvalidArgumentError, RunbatchError, UnsupportedError
from runbatch.identifiers import complete_name, parse_qualified_name, qualified
from runbatch.inference.function import ModelFunction, to_json_value
from runbatch.ml.model._signatures.core import ModelSignature
from runbatch.ml.model.inference_engine import InferenceEngine
from runbatch.wire.model_services import ModelServiceCreate, ModelServicePublic

if TYPE_CHECKING:
    from runbatch.inference.function import LoadedModel
    from runbatch.ml.model._model_version import ModelFunctionInfo, ModelVersion

__all__ = [
    "LIST_COLUMNS",
    "ServiceDeployment",
    "create_service",
    "delete_service",
    "list_services",
    "remote_model",
    "service_parts",
]

LIST_COLUMNS = ["name", "status", "inference_endpoint", "internal_endpoint", "autocapture_enabled"]
# Rows per request to the service: requests stay a few MB, and a long input shows progress in the
# server's log instead of one request that runs for minutes.
REQUEST_ROWS = 5000
_POLL_S = 1.0
_TIMEOUT_S = 30 * 60
_FAILED = ("FAILED", "INTERNAL_ERROR")
_LOG_LINES = 20


def service_parts(mv: ModelVersion, service_name: str) -> tuple[str, str, str]:
    """``[db.][schema.]name``; the model's database and schema fill in what is missing, as in Snowflake."""
    if not service_name or not service_name.strip():
        raise InvalidArgumentError("service_name cannot be empty.")
    db, schema, name = complete_name(
        parse_qualified_name(service_name), mv._info.database_name, mv._info.schema_name
    )
    assert db is not None and schema is not None  # the model's own database and schema
    return db, schema, name


class ServiceDeployment:
    """What ``create_service(block=False)`` returns, in place of Snowflake's ``AsyncJob``."""

    def __init__(self, mv: ModelVersion, parts: tuple[str, str, str]) -> None:
        self._mv = mv
        self.service_name = qualified(*parts)
        self._parts = parts

    def __repr__(self) -> str:
        return f"ServiceDeployment(service_name='{self.service_name}')"

    def status(self) -> str:
        return _find(self._mv, self._parts).status

    def is_done(self) -> bool:
        """True once the service is READY or has failed (``result()`` then says which)."""
        found = _find(self._mv, self._parts)
        return found.status == "READY" or found.status in _FAILED or _crashed(found)

    def result(self, timeout: float = _TIMEOUT_S) -> str:
        """Wait until the service is READY; a service whose server cannot start raises RuntimeError."""
        return _wait_ready(self._mv, self._parts, timeout)


def _find(mv: ModelVersion, parts: tuple[str, str, str]) -> ModelServicePublic:
    for found in mv._conn.client.list_model_services(*mv._key):
        if (found.database_name, found.schema_name, found.service_name) == parts:
            return found
    raise RuntimeError(f"Service {qualified(*parts)} is gone: it was dropped while it started.")


def _crashed(found: ModelServicePublic) -> bool:
    """The inference server exited (the worker restarts it, but a model that cannot load never will)."""
    return found.restarts > 0 and found.status != "READY"


def _logs(mv: ModelVersion, found: ModelServicePublic) -> str:
    statement = f"SELECT SYSTEM$GET_SERVICE_LOGS('{found.name}', 0, 'model-inference', {_LOG_LINES})"
    try:
        rows = mv._session.sql(statement).collect()
        return str(rows[0][0]) if rows else ""
    except RunbatchError:
        return ""


def _wait_ready(mv: ModelVersion, parts: tuple[str, str, str], timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while True:
        found = _find(mv, parts)
        if found.status == "READY":
            return f"Inference service {found.name} deployment complete: READY."
        if found.status in _FAILED or _crashed(found):
            logs = _logs(mv, found)
            raise RuntimeError(
                f"Model service deployment failed: Service {found.name} failed with status {found.status}: "
                f"{found.message or 'its inference server exited'}"
                + (f"\nLast lines of its log:\n{logs}" if logs else "")
            )
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"Model service deployment failed: Timeout waiting for service {found.name} to reach status "
                f"READY after {timeout / 60:g} minutes (it is {found.status}). It keeps starting; check "
                "mv.list_services() later."
            )
        time.sleep(_POLL_S)


def create_service(
    mv: ModelVersion,
    *,
    service_name: str,
    service_compute_pool: str,
    ingress_enabled: bool,
    min_instances: int,
    max_instances: int,
    cpu_requests: str | None,
    memory_requests: str | None,
    gpu_requests: str | int | None,
    num_workers: int | None,
    max_batch_rows: int | None,
    block: bool,
    autocapture: bool | None,
    inference_engine_options: dict[str, Any] | None,
    feature_sources_per_function: dict[str, Any] | None,
) -> str | ServiceDeployment:
    parts = service_parts(mv, service_name)
    if autocapture:
        raise UnsupportedError(
            "autocapture=True: runbatch does not capture inference data into an inference table. Leave "
            "autocapture unset."
        )
    if feature_sources_per_function:
        raise UnsupportedError(
            "feature_sources_per_function: runbatch has no feature store to look features up in; pass every "
            "feature in the input."
        )
    functions = mv.show_functions()
    tables = [f["name"] for f in functions if f["target_method_function_type"] == "TABLE_FUNCTION"]
    if tables and len(tables) < len(functions):
        warnings.warn(
            "Online inference services do not support TABLE_FUNCTION methods. The following methods have "
            f"TABLE_FUNCTION type: {', '.join(tables)}. These methods will not be available in the service.",
            stacklevel=3,
        )
    engine = dict(inference_engine_options or {})
    if engine.get("engine") is not None:
        engine["engine"] = InferenceEngine.from_value(engine["engine"]).value
    body = ModelServiceCreate(
        database=parts[0],
        schema_=parts[1],
        name=parts[2],
        compute_pool=service_compute_pool,
        ingress_enabled=ingress_enabled,
        min_instances=min_instances,
        max_instances=max_instances,
        cpu_requests=cpu_requests,
        memory_requests=memory_requests,
        gpu_requests=None if gpu_requests is None else str(gpu_requests),
        num_workers=num_workers,
        max_batch_rows=max_batch_rows,
        inference_engine_options=engine or None,
    )
    mv._conn.client.create_model_service(*mv._key, body)
    deployment = ServiceDeployment(mv, parts)
    return deployment.result() if block else deployment


def list_services(mv: ModelVersion) -> pd.DataFrame:
    rows = [
        [s.name, s.status, s.inference_endpoint, s.internal_endpoint, s.autocapture_enabled]
        for s in mv._conn.client.list_model_services(*mv._key)
    ]
    return pd.DataFrame(rows, columns=LIST_COLUMNS)


def delete_service(mv: ModelVersion, service_name: str) -> None:
    if not service_name:
        raise ValueError("service_name cannot be empty.")
    mv._conn.client.delete_model_service(*mv._key, service_parts(mv, service_name))


class _RemoteModel:
    """Stands where a loaded model would: its function calls the service instead of a local model."""

    def __init__(self, mv: ModelVersion, parts: tuple[str, str, str], info: ModelFunctionInfo) -> None:
        self._mv, self._parts, self._info = mv, parts, info

    def function(self, method: str) -> ModelFunction:
        signature: ModelSignature = self._info["signature"]
        return ModelFunction(method, signature, self._call, self._info["target_method_function_type"], False)

    def _call(self, frame: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        signature: ModelSignature = self._info["signature"]
        trailing = [to_json_value(params[p.name]) for p in signature.params if p.name in params]
        outputs = [f.name for f in signature.outputs]
        client = self._mv._conn.client
        records: list[dict[str, Any]] = []
        columns = [frame[name].tolist() for name in frame.columns]
        for start in range(0, len(frame), REQUEST_ROWS):
            end = min(start + REQUEST_ROWS, len(frame))
            rows = [
                [i - start, *(to_json_value(col[i]) for col in columns), *trailing] for i in range(start, end)
            ]
            answer = client.call_model_service(self._parts, self._info["target_method"], rows)
            by_index = _answer_rows(answer, end - start, qualified(*self._parts))
            records.extend(by_index)
        result = (
            pd.DataFrame.from_records(records, columns=outputs) if records else pd.DataFrame(columns=outputs)
        )
        result.index = frame.index
        return result


def _answer_rows(answer: list[Any], count: int, service: str) -> list[dict[str, Any]]:
    """The service's rows, put back in request order; a malformed answer says what it should be."""
    got: dict[int, dict[str, Any]] = {}
    for item in answer:
        if not (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], int)
            and isinstance(item[1], dict)
        ):
            raise RuntimeError(
                f"Service {service} answered a row as {str(item)[:200]}; each row must be [row_index, "
                "{output: value, ...}]."
            )
        got[item[0]] = item[1]
    if sorted(got) != list(range(count)):
        raise RuntimeError(f"Service {service} answered {len(got)} row(s) for the {count} it was sent.")
    return [got[i] for i in range(count)]


def remote_model(mv: ModelVersion, service_name: str, info: ModelFunctionInfo) -> LoadedModel:
    """What ``run_locally`` calls in place of the loaded model when ``run`` names a service."""
    if info["target_method_function_type"] == "TABLE_FUNCTION":
        raise InvalidArgumentError(
            f"Function {info['name']} is a TABLE_FUNCTION; online inference services do not serve table "
            "functions. Call run() without service_name, or use run_batch."
        )
    return cast("LoadedModel", _RemoteModel(mv, service_parts(mv, service_name), info))
