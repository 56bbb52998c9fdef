"""``RunbatchHook``: where the runbatch control plane is and how to authenticate to it.

An Airflow Connection (``runbatch_default`` unless named) with ``host`` = the API URL and
``password`` = the token; without one, ``RUNBATCH_API_URL`` and ``RUNBATCH_TOKEN`` as the SDK
reads them. The token never leaves the hook: triggers get the connection id, not the token,
because their arguments are stored in Airflow's metadata database.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from pydantic import TypeAdapter

from runbatch import __version__
from runbatch.airflow.job_request import JobAddress
from runbatch.client import ControlPlaneClient
from runbatch.errors import InvalidArgumentError, TransportError, error_for_code
from runbatch.stage.paths import StagePath
from runbatch.wire.jobs import JobPublic
from runbatch.wire.resources import StageFilePublic

__all__ = ["RunbatchHook"]

DEFAULT_CONN_ID = "runbatch_default"


def _api_url(host: str, port: int | None, scheme: str | None) -> str:
    # A full URL in host is the common case; otherwise HttpHook's convention: schema is the scheme.
    url = (host if "://" in host else f"{scheme or 'http'}://{host}").rstrip("/")
    return f"{url}:{port}" if port and urlsplit(url).port is None else url


class RunbatchHook(BaseHook):
    """Clients of one runbatch control plane: ``get_conn()`` (sync) and ``a*`` calls (async)."""

    conn_name_attr = "runbatch_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "runbatch"
    hook_name = "runbatch"

    def __init__(self, runbatch_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.runbatch_conn_id = runbatch_conn_id

    def _from_connection(self, conn: Any) -> tuple[str, str]:
        if not conn.host or not conn.password:
            missing = "host (the API URL)" if not conn.host else "password (the token)"
            raise InvalidArgumentError(
                f"The Airflow connection {self.runbatch_conn_id!r} has no {missing}. Set host to the runbatch "
                "API URL, e.g. http://runbatch:8000, and password to a token (`runbatch token create`)."
            )
        return _api_url(conn.host, conn.port, conn.schema), conn.password

    def _from_environment(self, cause: Exception) -> tuple[str, str]:
        url, token = os.environ.get("RUNBATCH_API_URL"), os.environ.get("RUNBATCH_TOKEN")
        if self.runbatch_conn_id == DEFAULT_CONN_ID and url and token:
            return url.rstrip("/"), token
        raise InvalidArgumentError(
            f"There is no Airflow connection {self.runbatch_conn_id!r}. Create one of type runbatch with host = "
            "the runbatch API URL and password = a token (e.g. AIRFLOW_CONN_RUNBATCH_DEFAULT="
            "'runbatch://:TOKEN@HOST:PORT'), or set RUNBATCH_API_URL and RUNBATCH_TOKEN for runbatch_default."
        ) from cause

    def credentials(self) -> tuple[str, str]:
        """(API URL, token)."""
        try:
            conn = self.get_connection(self.runbatch_conn_id)
        except AirflowNotFoundException as exc:
            return self._from_environment(exc)
        return self._from_connection(conn)

    async def acredentials(self) -> tuple[str, str]:
        """(API URL, token), from the event loop of a triggerer without blocking it."""
        try:
            conn = await self.aget_connection(self.runbatch_conn_id)
        except AirflowNotFoundException as exc:
            return self._from_environment(exc)
        return self._from_connection(conn)

    def get_conn(self) -> ControlPlaneClient:
        url, token = self.credentials()
        return ControlPlaneClient(url, token)

    # -- async calls, for triggers ----------------------------------------------------------------
    async def _arequest(self, method: str, path: str, params: dict[str, str] | None = None) -> Any:
        url, token = await self.acredentials()
        headers = {"Authorization": f"Bearer {token}", "User-Agent": f"runbatch-airflow/{__version__}"}
        async with httpx.AsyncClient(base_url=url + "/api/v1", headers=headers, timeout=30) as http:
            try:
                response = await http.request(method, path, params=params)
            except httpx.TransportError as exc:
                raise TransportError(f"Cannot reach the runbatch control plane at {url}: {exc}") from None
        if response.is_error:
            try:
                detail = response.json()["error"]
                code, message = str(detail["code"]), str(detail["message"])
            except (ValueError, KeyError, TypeError):
                code, message = "internal", f"HTTP {response.status_code}: {response.text[:500]}"
            raise error_for_code(code, message)
        return response.json()

    @staticmethod
    def _job_path(job: JobAddress) -> str:
        return f"/databases/{_seg(job.database)}/schemas/{_seg(job.schema)}/jobs/{_seg(job.name)}"

    async def aget_job(self, job: JobAddress) -> JobPublic:
        return JobPublic.model_validate(await self._arequest("GET", self._job_path(job)))

    async def acancel_job(self, job: JobAddress) -> JobPublic:
        return JobPublic.model_validate(await self._arequest("POST", self._job_path(job) + "/cancel"))

    async def alist_stage_files(self, location: StagePath) -> list[StageFilePublic]:
        stage = f"/databases/{_seg(location.database)}/schemas/{_seg(location.schema)}/stages/{_seg(location.stage)}"
        body = await self._arequest(
            "GET", stage + "/files", {"path": location.path + "/" if location.path else ""}
        )
        return TypeAdapter(list[StageFilePublic]).validate_python(body)


def _seg(name: str) -> str:
    return quote(name, safe="")
