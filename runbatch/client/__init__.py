"""The HTTP client of the control plane, used by the SDK, the worker and the runtime."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import pyarrow as pa
from pydantic import BaseModel, TypeAdapter

from runbatch import __version__
from runbatch.errors import InternalError, ServiceUnavailableError, TransportError, error_for_code
from runbatch.stage.s3 import ChunkReader
from runbatch.wire.auth import LoginRequest, LoginResponse, MePublic, TokenCreate, TokenCreated, TokenPublic
from runbatch.wire.dags import DagCreate, DagPublic, DagRunPublic
from runbatch.wire.jobs import (
    JobCreate,
    JobPublic,
    JobsPublic,
    LogBatch,
    LogLine,
    LogsPublic,
    OutputFile,
    ShardAck,
    ShardAssignment,
    ShardClaim,
    ShardComplete,
    ShardExit,
    ShardFail,
    ShardHeartbeat,
    ShardProgress,
    ShardPublic,
    ShardWork,
)
from runbatch.wire.model_services import ModelServiceCreate, ModelServicePublic
from runbatch.wire.monitors import MetricSeries, MonitorCreate, MonitorPublic, MonitorRefresh
from runbatch.wire.registry import ModelPublic, ModelVersionPublic
from runbatch.wire.resources import ComputePoolPublic, SqlRequest, SqlResult, StageFilePublic, TablePublic
from runbatch.wire.services import (
    ServiceAck,
    ServiceBeat,
    ServiceClaim,
    ServiceExit,
    ServiceLogBatch,
    ServiceWork,
)
from runbatch.wire.workers import WorkerPublic, WorkerRegister

__all__ = ["ARROW_STREAM", "ControlPlaneClient"]

T = TypeVar("T")

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _seg(name: str) -> str:
    return quote(name, safe="")


class ControlPlaneClient:
    """Typed calls to ``/api/v1``. Errors come back as ``runbatch.errors`` exceptions."""

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 60.0,
        retries: int = 3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._retries = retries
        self._http = httpx.Client(
            base_url=self.base_url + "/api/v1",
            headers={"Authorization": f"Bearer {token}", "User-Agent": f"runbatch/{__version__}"},
            timeout=timeout,
            transport=transport,
        )

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, *, idempotent: bool | None = None, **kwargs: Any
    ) -> httpx.Response:
        """Send a request, retrying connection failures and 503s for idempotent calls."""
        retry = method in ("GET", "PUT", "DELETE") if idempotent is None else idempotent
        attempts = self._retries + 1 if retry else 1
        for attempt in range(attempts):
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                if attempt + 1 < attempts:
                    time.sleep(0.2 * 2**attempt)
                    continue
                raise TransportError(
                    f"Cannot reach the runbatch control plane at {self.base_url}: {exc}"
                ) from None
            if response.status_code == 503 and attempt + 1 < attempts:
                time.sleep(0.2 * 2**attempt)
                continue
            if response.is_error:
                raise self._error(response)
            return response
        raise ServiceUnavailableError("The control plane stayed unavailable.")  # pragma: no cover

    @staticmethod
    def _error(response: httpx.Response) -> Exception:
        try:
            body = response.json()
            detail = body["error"]
            return error_for_code(str(detail["code"]), str(detail["message"]))
        except Exception:
            return error_for_code("internal", f"HTTP {response.status_code}: {response.text[:500]}")

    def _get(self, endpoint: str, model: type[T], **params: Any) -> T:
        query = {k: v for k, v in params.items() if v is not None}
        return TypeAdapter(model).validate_python(self._request("GET", endpoint, params=query).json())

    def _send(
        self,
        method: str,
        path: str,
        body: BaseModel | dict[str, Any] | None,
        model: type[T],
        *,
        idempotent: bool | None = None,
    ) -> T:
        payload = body.model_dump(mode="json", by_alias=True) if isinstance(body, BaseModel) else body
        return TypeAdapter(model).validate_python(
            self._request(method, path, json=payload, idempotent=idempotent).json()
        )

    # -- login and tokens (runbatch.wire.auth) ----------------------------------------------------
    def login(self, username: str, password: str) -> LoginResponse:
        """Trade a password for a token (the request's own bearer token is not needed)."""
        return self._send("POST", "/login", LoginRequest(username=username, password=password), LoginResponse)

    def me(self) -> MePublic:
        return self._get("/me", MePublic)

    def create_token(
        self, *, name: str = "api", user: str | None = None, expires_in: str | None = None
    ) -> TokenCreated:
        body = TokenCreate(name=name, user=user, expires_in=expires_in)
        return self._send("POST", "/tokens", body, TokenCreated, idempotent=False)

    def list_tokens(self, *, all_users: bool = False) -> list[TokenPublic]:
        return self._get("/tokens", list[TokenPublic], all_users=all_users or None)

    def revoke_token(self, token_id: uuid.UUID | str) -> None:
        self._request("DELETE", f"/tokens/{token_id}")

    # -- SQL, stages ------------------------------------------------------------------------------
    def sql(self, sql: str, *, database: str | None, schema: str | None) -> SqlResult:
        body = SqlRequest(sql=sql, database=database, schema=schema).model_dump(mode="json", by_alias=True)
        # A statement answers when it is done, and COPY INTO answers once its files are written: no read timeout.
        timeout = httpx.Timeout(self._http.timeout.connect, read=None)
        response = self._request("POST", "/sql", json=body, idempotent=False, timeout=timeout)
        return SqlResult.model_validate(response.json())

    def query(self, sql: str, *, database: str | None, schema: str | None) -> pa.RecordBatchReader:
        """A query's rows, read from the response one record batch at a time."""
        body = SqlRequest(sql=sql, database=database, schema=schema).model_dump(mode="json", by_alias=True)
        request = self._http.build_request("POST", "/sql", json=body, headers={"Accept": ARROW_STREAM})
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise TransportError(
                f"Cannot reach the runbatch control plane at {self.base_url}: {exc}"
            ) from None
        if response.is_error:
            response.read()
            response.close()
            raise self._error(response)
        try:
            reader = pa.ipc.open_stream(ChunkReader(response.iter_bytes(1 << 20)))
        except BaseException:
            response.close()
            raise

        def _batches() -> Iterator[pa.RecordBatch]:
            try:
                yield from reader
            except (pa.ArrowInvalid, httpx.HTTPError) as exc:
                # The server failed after the first rows were sent; the error cannot be an error body.
                raise InternalError(f"The query failed while its rows were streaming: {exc}") from None
            finally:
                response.close()

        return pa.RecordBatchReader.from_batches(reader.schema, _batches())

    def save_table(
        self, database: str, schema: str, table: str, content: bytes | Iterable[bytes], *, mode: str
    ) -> TablePublic:
        """Store one Parquet file as the table's data (``mode`` as in ``save_as_table``)."""
        url = f"/databases/{_seg(database)}/schemas/{_seg(schema)}/tables/{_seg(table)}/data"
        response = self._request("PUT", url, content=content, params={"mode": mode}, idempotent=False)
        return TablePublic.model_validate(response.json())

    @staticmethod
    def _stage(database: str, schema: str, stage: str) -> str:
        return f"/databases/{_seg(database)}/schemas/{_seg(schema)}/stages/{_seg(stage)}/files"

    def list_stage_files(
        self, database: str, schema: str, stage: str, path: str = "", pattern: str | None = None
    ) -> list[StageFilePublic]:
        return self._get(
            self._stage(database, schema, stage), list[StageFilePublic], path=path, pattern=pattern
        )

    def upload_stage_file(
        self, database: str, schema: str, stage: str, path: str, content: bytes | Iterable[bytes]
    ) -> StageFilePublic:
        url = f"{self._stage(database, schema, stage)}/{quote(path)}"
        response = self._request("PUT", url, content=content, idempotent=isinstance(content, bytes))
        return StageFilePublic.model_validate(response.json())

    def download_stage_file(self, database: str, schema: str, stage: str, path: str) -> Iterator[bytes]:
        url = f"{self._stage(database, schema, stage)}/{quote(path)}"
        with self._http.stream("GET", url) as response:
            if response.is_error:
                response.read()
                raise self._error(response)
            yield from response.iter_bytes(1 << 20)

    def delete_stage_file(self, database: str, schema: str, stage: str, path: str) -> None:
        self._request("DELETE", f"{self._stage(database, schema, stage)}/{quote(path)}")

    def get_database(self, database: str) -> dict[str, Any]:
        return self._get(f"/databases/{_seg(database)}", dict[str, Any])

    def get_schema(self, database: str, schema: str) -> dict[str, Any]:
        return self._get(f"/databases/{_seg(database)}/schemas/{_seg(schema)}", dict[str, Any])

    # -- registry ---------------------------------------------------------------------------------
    @staticmethod
    def _models(database: str, schema: str) -> str:
        return f"/databases/{_seg(database)}/schemas/{_seg(schema)}/models"

    def list_models(self, database: str, schema: str) -> list[ModelPublic]:
        return self._get(self._models(database, schema), list[ModelPublic])

    def get_model(self, database: str, schema: str, model: str) -> ModelPublic:
        return self._get(f"{self._models(database, schema)}/{_seg(model)}", ModelPublic)

    def update_model(self, database: str, schema: str, model: str, **fields: Any) -> ModelPublic:
        return self._send(
            "PATCH", f"{self._models(database, schema)}/{_seg(model)}", fields, ModelPublic, idempotent=True
        )

    def delete_model(self, database: str, schema: str, model: str) -> None:
        self._request("DELETE", f"{self._models(database, schema)}/{_seg(model)}")

    def add_version(
        self, database: str, schema: str, model: str, version: str | None, archive: Iterable[bytes]
    ) -> ModelVersionPublic:
        url = f"{self._models(database, schema)}/{_seg(model)}/versions"
        params = {"version_name": version} if version else {}
        response = self._request(
            "POST", url, content=archive, params=params, headers={"Content-Type": "application/x-tar"}
        )
        return ModelVersionPublic.model_validate(response.json())

    def list_versions(self, database: str, schema: str, model: str) -> list[ModelVersionPublic]:
        return self._get(f"{self._models(database, schema)}/{_seg(model)}/versions", list[ModelVersionPublic])

    def _version(self, database: str, schema: str, model: str, version: str) -> str:
        return f"{self._models(database, schema)}/{_seg(model)}/versions/{_seg(version)}"

    def get_version(self, database: str, schema: str, model: str, version: str) -> ModelVersionPublic:
        return self._get(self._version(database, schema, model, version), ModelVersionPublic)

    def update_version(
        self, database: str, schema: str, model: str, version: str, **fields: Any
    ) -> ModelVersionPublic:
        return self._send(
            "PATCH",
            self._version(database, schema, model, version),
            fields,
            ModelVersionPublic,
            idempotent=True,
        )

    def delete_version(self, database: str, schema: str, model: str, version: str) -> None:
        self._request("DELETE", self._version(database, schema, model, version))

    def download_version(
        self, database: str, schema: str, model: str, version: str, subtree: str = ""
    ) -> Iterator[bytes]:
        with self._http.stream(
            "GET", self._version(database, schema, model, version) + "/artifact", params={"subtree": subtree}
        ) as response:
            if response.is_error:
                response.read()
                raise self._error(response)
            yield from response.iter_bytes(1 << 20)

    def set_metric(
        self, database: str, schema: str, model: str, version: str, name: str, value: Any
    ) -> ModelVersionPublic:
        return self._send(
            "PUT",
            self._version(database, schema, model, version) + f"/metrics/{_seg(name)}",
            {"value": value},
            ModelVersionPublic,
        )

    def delete_metric(
        self, database: str, schema: str, model: str, version: str, name: str
    ) -> ModelVersionPublic:
        response = self._request(
            "DELETE", self._version(database, schema, model, version) + f"/metrics/{_seg(name)}"
        )
        return ModelVersionPublic.model_validate(response.json())

    def set_alias(self, database: str, schema: str, model: str, alias: str, version: str) -> ModelPublic:
        return self._send(
            "PUT",
            f"{self._models(database, schema)}/{_seg(model)}/aliases/{_seg(alias)}",
            {"version": version},
            ModelPublic,
        )

    def unset_alias(self, database: str, schema: str, model: str, alias: str) -> ModelPublic:
        response = self._request(
            "DELETE", f"{self._models(database, schema)}/{_seg(model)}/aliases/{_seg(alias)}"
        )
        return ModelPublic.model_validate(response.json())

    def set_tag(self, database: str, schema: str, model: str, tag: str, value: str) -> ModelPublic:
        return self._send(
            "PUT",
            f"{self._models(database, schema)}/{_seg(model)}/tags/{_seg(tag)}",
            {"value": value},
            ModelPublic,
        )

    def unset_tag(self, database: str, schema: str, model: str, tag: str) -> ModelPublic:
        response = self._request("DELETE", f"{self._models(database, schema)}/{_seg(model)}/tags/{_seg(tag)}")
        return ModelPublic.model_validate(response.json())

    # -- jobs -------------------------------------------------------------------------------------
    @staticmethod
    def _job(database: str, schema: str, name: str) -> str:
        return f"/databases/{_seg(database)}/schemas/{_seg(schema)}/jobs/{_seg(name)}"

    def submit_job(self, body: JobCreate, *, idempotency_key: str | None = None) -> JobPublic:
        """Submit a job. One ``Idempotency-Key`` per call makes the transport's retries safe: a
        retried POST gets the first job back from the server instead of starting a second one."""
        headers = {"Idempotency-Key": idempotency_key or str(uuid.uuid4())}
        payload = body.model_dump(mode="json", by_alias=True)
        response = self._request("POST", "/jobs", json=payload, headers=headers, idempotent=True)
        return JobPublic.model_validate(response.json())

    def start_job(self, database: str, schema: str, name: str) -> JobPublic:
        return self._send(
            "POST", self._job(database, schema, name) + "/start", None, JobPublic, idempotent=False
        )

    def list_jobs(
        self,
        *,
        database: str | None = None,
        schema: str | None = None,
        status: str | None = None,
        limit: int = 100,
        offset: int = 0,
        name: str | None = None,
        page_token: str | None = None,
    ) -> JobsPublic:
        """One page of jobs, newest first; pass ``next_page_token`` back as ``page_token`` for the next."""
        return self._get(
            "/jobs",
            JobsPublic,
            database=database,
            schema=schema,
            status=status,
            limit=limit,
            offset=offset or None,
            name=name,
            page_token=page_token,
        )

    def get_job(self, database: str, schema: str, name: str) -> JobPublic:
        return self._get(self._job(database, schema, name), JobPublic)

    def cancel_job(self, database: str, schema: str, name: str) -> JobPublic:
        return self._send(
            "POST", self._job(database, schema, name) + "/cancel", None, JobPublic, idempotent=True
        )

    def delete_job(self, database: str, schema: str, name: str) -> None:
        self._request("DELETE", self._job(database, schema, name))

    def job_logs(
        self, database: str, schema: str, name: str, *, instance_id: int | None, limit: int
    ) -> LogsPublic:
        return self._get(
            self._job(database, schema, name) + "/logs", LogsPublic, instance_id=instance_id, limit=limit
        )

    def follow_job_logs(
        self, database: str, schema: str, name: str, *, instance_id: int | None, limit: int
    ) -> Iterator[LogLine]:
        """The last ``limit`` log lines (<= 0: all), then each new line as the server streams it,
        until the job ends (``GET .../logs?follow=true``, NDJSON)."""
        params: dict[str, Any] = {"follow": "true", "limit": limit}
        if instance_id is not None:
            params["instance_id"] = instance_id
        with self._http.stream("GET", self._job(database, schema, name) + "/logs", params=params) as response:
            if response.is_error:
                response.read()
                raise self._error(response)
            for text in response.iter_lines():
                if text.strip():  # blank lines are the server's keep-alives
                    yield LogLine.model_validate_json(text)

    def job_shards(self, database: str, schema: str, name: str) -> list[ShardPublic]:
        return self._get(self._job(database, schema, name) + "/shards", list[ShardPublic])

    # -- worker and runtime -----------------------------------------------------------------------
    def register_worker(self, body: WorkerRegister) -> WorkerPublic:
        return self._send("POST", "/workers", body, WorkerPublic, idempotent=False)

    def worker_heartbeat(self, worker_id: uuid.UUID) -> WorkerPublic:
        return self._send("POST", f"/workers/{worker_id}/heartbeat", None, WorkerPublic, idempotent=True)

    def sign_off_worker(self, worker_id: uuid.UUID) -> None:
        self._request("DELETE", f"/workers/{worker_id}")

    def list_workers(self, pool: str | None = None) -> list[WorkerPublic]:
        return self._get("/workers", list[WorkerPublic], pool=pool)

    def list_compute_pools(self) -> list[ComputePoolPublic]:
        return self._get("/compute-pools", list[ComputePoolPublic])

    def get_compute_pool(self, name: str) -> ComputePoolPublic:
        return self._get(f"/compute-pools/{_seg(name)}", ComputePoolPublic)

    def pending_shards(self, pool: str | None = None) -> list[dict[str, Any]]:
        return self._get("/shards", list[dict[str, Any]], pool=pool)

    def claim_shard(self, shard_id: uuid.UUID, worker: str) -> ShardAssignment:
        return self._send(
            "POST", f"/shards/{shard_id}/claim", ShardClaim(worker=worker), ShardAssignment, idempotent=False
        )

    def shard_work(self, shard_id: uuid.UUID) -> ShardWork:
        return self._get(f"/shards/{shard_id}/work", ShardWork)

    def heartbeat(self, shard_id: uuid.UUID, attempt: int) -> ShardAck:
        return self._send(
            "POST",
            f"/shards/{shard_id}/heartbeat",
            ShardHeartbeat(attempt=attempt),
            ShardAck,
            idempotent=True,
        )

    def progress(self, shard_id: uuid.UUID, attempt: int, rows_done: int, rows_failed: int = 0) -> ShardAck:
        return self._send(
            "POST",
            f"/shards/{shard_id}/progress",
            ShardProgress(attempt=attempt, rows_done=rows_done, rows_failed=rows_failed),
            ShardAck,
            idempotent=True,
        )

    def complete_shard(
        self, shard_id: uuid.UUID, attempt: int, files: list[OutputFile], rows_done: int, rows_failed: int = 0
    ) -> None:
        body = ShardComplete(attempt=attempt, files=files, rows_done=rows_done, rows_failed=rows_failed)
        self._request(
            "POST", f"/shards/{shard_id}/complete", json=body.model_dump(mode="json"), idempotent=True
        )

    def fail_shard(self, shard_id: uuid.UUID, attempt: int, message: str, *, retryable: bool) -> None:
        body = ShardFail(attempt=attempt, message=message, retryable=retryable)
        self._request("POST", f"/shards/{shard_id}/fail", json=body.model_dump(mode="json"), idempotent=True)

    def shard_exit(
        self, shard_id: uuid.UUID, attempt: int, exit_code: int, message: str, *, retryable: bool
    ) -> None:
        body = ShardExit(attempt=attempt, exit_code=exit_code, message=message, retryable=retryable)
        self._request("POST", f"/shards/{shard_id}/exit", json=body.model_dump(mode="json"), idempotent=True)

    def append_logs(self, shard_id: uuid.UUID, attempt: int, lines: list[str]) -> None:
        body = LogBatch(attempt=attempt, lines=lines)
        self._request("POST", f"/shards/{shard_id}/logs", json=body.model_dump(mode="json"), idempotent=False)

    # -- job services (the worker side) --------------------------------------------------------
    def claim_service(self, service_id: uuid.UUID, worker: str) -> ServiceWork:
        return self._send(
            "POST",
            f"/services/{service_id}/claim",
            ServiceClaim(worker=worker),
            ServiceWork,
            idempotent=False,
        )

    def service_heartbeat(self, service_id: uuid.UUID, beat: ServiceBeat) -> bool:
        """True when the service's containers must stop (it was dropped or suspended)."""
        return self._send("POST", f"/services/{service_id}/heartbeat", beat, ServiceAck, idempotent=True).stop

    def service_logs(self, service_id: uuid.UUID, attempt: int, container: str, lines: list[str]) -> None:
        body = ServiceLogBatch(attempt=attempt, container=container, lines=lines)
        self._request(
            "POST", f"/services/{service_id}/logs", json=body.model_dump(mode="json"), idempotent=False
        )

    def service_exit(self, service_id: uuid.UUID, body: ServiceExit) -> None:
        self._request(
            "POST", f"/services/{service_id}/exit", json=body.model_dump(mode="json"), idempotent=True
        )

    # -- model services ---------------------------------------------------------------------------
    def create_model_service(
        self, database: str, schema: str, model: str, version: str, body: ModelServiceCreate
    ) -> ModelServicePublic:
        return self._send(
            "POST",
            self._version(database, schema, model, version) + "/services",
            body,
            ModelServicePublic,
            idempotent=False,
        )

    def list_model_services(
        self, database: str, schema: str, model: str, version: str
    ) -> list[ModelServicePublic]:
        return self._get(
            self._version(database, schema, model, version) + "/services", list[ModelServicePublic]
        )

    def delete_model_service(
        self, database: str, schema: str, model: str, version: str, service: tuple[str, str, str]
    ) -> None:
        path = "/".join(_seg(p) for p in service)
        self._request("DELETE", f"{self._version(database, schema, model, version)}/services/{path}")

    def call_model_service(
        self, service: tuple[str, str, str], function: str, rows: list[list[Any]], *, timeout: float = 600.0
    ) -> list[Any]:
        """Rows ``[index, args...]`` through a model service's function; its answer's ``data``."""
        path = "/".join(_seg(p) for p in service)
        response = self._request(
            "POST",
            f"/services/{path}/functions/{_seg(function)}",
            json={"data": rows},
            idempotent=False,
            timeout=timeout,
        )
        data: list[Any] = response.json()["data"]
        return data

    # -- DAGs (task graphs) -----------------------------------------------------------------------
    @staticmethod
    def _dags(database: str, schema: str) -> str:
        return f"/databases/{_seg(database)}/schemas/{_seg(schema)}/dags"

    def _dag(self, database: str, schema: str, name: str) -> str:
        return f"{self._dags(database, schema)}/{_seg(name)}"

    def deploy_dag(self, database: str, schema: str, body: DagCreate) -> DagPublic:
        return self._send("POST", self._dags(database, schema), body, DagPublic, idempotent=False)

    def list_dags(self, database: str, schema: str, *, like: str | None = None) -> list[DagPublic]:
        return self._get(self._dags(database, schema), list[DagPublic], like=like)

    def get_dag(self, database: str, schema: str, name: str) -> DagPublic:
        return self._get(self._dag(database, schema, name), DagPublic)

    def drop_dag(self, database: str, schema: str, name: str, *, if_exists: bool = False) -> None:
        self._request("DELETE", self._dag(database, schema, name), params={"if_exists": if_exists})

    def resume_dag(self, database: str, schema: str, name: str) -> DagPublic:
        return self._send(
            "POST", self._dag(database, schema, name) + "/resume", None, DagPublic, idempotent=True
        )

    def suspend_dag(self, database: str, schema: str, name: str) -> DagPublic:
        return self._send(
            "POST", self._dag(database, schema, name) + "/suspend", None, DagPublic, idempotent=True
        )

    def execute_dag(self, database: str, schema: str, name: str) -> DagRunPublic:
        """Start a run now. Its ``Idempotency-Key`` makes the transport's retries safe: a retried POST
        gets the first run back instead of starting a second one."""
        response = self._request(
            "POST",
            self._dag(database, schema, name) + "/execute",
            headers={"Idempotency-Key": str(uuid.uuid4())},
            idempotent=True,
        )
        return DagRunPublic.model_validate(response.json())

    def list_dag_runs(
        self,
        database: str,
        schema: str,
        name: str,
        *,
        current: bool | None = None,
        error_only: bool = False,
        completed_within_s: float | None = None,
        limit: int = 100,
    ) -> list[DagRunPublic]:
        """Runs newest first: ``current`` (scheduled or executing), ended (``current=False``), or all."""
        return self._get(
            self._dag(database, schema, name) + "/runs",
            list[DagRunPublic],
            current=current,
            error_only=error_only,
            completed_within_s=completed_within_s,
            limit=limit,
        )

    def get_dag_run(self, database: str, schema: str, name: str, run_uuid: uuid.UUID) -> DagRunPublic:
        return self._get(self._dag(database, schema, name) + f"/runs/{run_uuid}", DagRunPublic)

    # -- model monitors ---------------------------------------------------------------------------
    @staticmethod
    def _monitors(database: str, schema: str) -> str:
        return f"/databases/{_seg(database)}/schemas/{_seg(schema)}/monitors"

    def _monitor(self, database: str, schema: str, name: str) -> str:
        return f"{self._monitors(database, schema)}/{_seg(name)}"

    def create_monitor(self, database: str, schema: str, body: MonitorCreate) -> MonitorPublic:
        return self._send("POST", self._monitors(database, schema), body, MonitorPublic, idempotent=False)

    def list_monitors(self, database: str, schema: str) -> list[MonitorPublic]:
        return self._get(self._monitors(database, schema), list[MonitorPublic])

    def get_monitor(self, database: str, schema: str, name: str) -> MonitorPublic:
        return self._get(self._monitor(database, schema, name), MonitorPublic)

    def drop_monitor(self, database: str, schema: str, name: str, *, if_exists: bool = False) -> None:
        self._request("DELETE", self._monitor(database, schema, name), params={"if_exists": if_exists})

    def suspend_monitor(self, database: str, schema: str, name: str) -> MonitorPublic:
        return self._send(
            "POST", self._monitor(database, schema, name) + "/suspend", None, MonitorPublic, idempotent=False
        )

    def resume_monitor(self, database: str, schema: str, name: str) -> MonitorPublic:
        return self._send(
            "POST", self._monitor(database, schema, name) + "/resume", None, MonitorPublic, idempotent=False
        )

    def refresh_monitor(self, database: str, schema: str, name: str) -> MonitorRefresh:
        return self._send(
            "POST", self._monitor(database, schema, name) + "/refresh", None, MonitorRefresh, idempotent=True
        )

    def monitor_metrics(self, database: str, schema: str, name: str, **params: Any) -> MetricSeries:
        """One metric series: ``kind``, ``metric``, and ``column``, ``segment_column``/``segment_value``,
        ``start``, ``end`` where they apply."""
        return self._get(self._monitor(database, schema, name) + "/metrics", MetricSeries, **params)

    # -- image repositories (docs/images.md) ------------------------------------------------------
    def image_repository_url(self, database: str, schema: str, name: str) -> str:
        """The ``repository_url`` of an image repository: what docker tags and pushes take."""
        path = f"/databases/{_seg(database)}/schemas/{_seg(schema)}/image-repositories/{_seg(name)}"
        return str(self._request("GET", path).json()["repository_url"])

    def registry_token(self, scopes: list[str]) -> str:
        """A token of the cluster's registry granting what this client's token may do of ``scopes``
        (``repository:db/schema/repo/image:pull``); a scope it may not use is granted no actions."""
        return str(self._request("GET", "/registry/token", params={"scope": scopes}).json()["token"])
