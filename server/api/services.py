"""Job services: their SQL (reached through POST /sql) and the worker side (claim, beat, logs, end)."""

from __future__ import annotations

import fnmatch
import re
import time
import uuid

import httpx
import pyarrow as pa
from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTask

from runbatch.errors import InvalidArgumentError, NotFoundError, ServiceUnavailableError
from runbatch.identifiers import qualified
from runbatch.wire.resources import SqlRequest, SqlResult, is_query
from runbatch.wire.services import (
    ServiceAck,
    ServiceBeat,
    ServiceClaim,
    ServiceExit,
    ServiceLogBatch,
    ServiceWork,
)
from server.auth import privileges
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import ServiceRow
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.spcs import functions
from server.spcs import service as spcs
from server.spcs.statements import (
    AlterService,
    CreateService,
    CreateServiceFunction,
    DropFunction,
    DropService,
    ExecuteJobService,
    ServiceLogs,
    ServiceStatus,
    ShowEndpoints,
    ShowServices,
    parse_service_statement,
)
from server.sql.results import ARROW_STREAM

__all__ = ["router", "run_service_statement"]

router = APIRouter(prefix="/services", tags=["services"])

_WAIT_POLL_S = 0.5


def _names(parts: list[str], database: str | None, schema: str | None) -> tuple[str, str, str]:
    if len(parts) == 3:
        return parts[0], parts[1], parts[2]
    if len(parts) == 2 and database is not None:
        return database, parts[0], parts[1]
    if database is None or schema is None:
        raise InvalidArgumentError(
            f"Cannot resolve service {qualified(*parts)}: there is no current database and schema. Qualify the "
            "name (DB.SCHEMA.NAME) or run USE SCHEMA first."
        )
    return database, schema, parts[0]


def _result(body: SqlRequest, columns: list[str], rows: list[list[object]]) -> SqlResult:
    return SqlResult(columns=columns, rows=rows, database=body.database, schema=body.schema_)


def _wait(cp: ControlPlane, service_id: uuid.UUID) -> ServiceRow | None:
    """Until the job service ends (EXECUTE JOB SERVICE is synchronous by default, as in Snowflake)."""
    while True:
        with cp.read_sessionmaker() as reading:
            row = reading.get(ServiceRow, service_id)
            if row is None or row.status in spcs.TERMINAL:
                if row is not None:
                    reading.expunge(row)
                return row
        time.sleep(_WAIT_POLL_S)


def run_service_statement(
    body: SqlRequest, request: Request, session: SessionDep, cp: ControlPlane, user: Principal
) -> SqlResult | Response:
    """One job-service statement (the route calling this owns the transaction). ``SELECT SYSTEM$...``
    answers as a query does, as Arrow, when the client asks for that (the SDK does for SELECT)."""
    result = _run(body, session, cp, user)
    if not is_query(body.sql) or ARROW_STREAM not in request.headers.get("accept", ""):
        return result
    table = pa.table(
        {c: pa.array([r[i] for r in result.rows], pa.string()) for i, c in enumerate(result.columns)}
    )
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)


def _run(body: SqlRequest, session: SessionDep, cp: ControlPlane, user: Principal) -> SqlResult:
    stmt = parse_service_statement(body.sql)
    # A service runs any image with the worker host's network: there are no service or schema
    # privileges to grant yet, so only ACCOUNTADMIN runs, sees or changes services.
    privileges.require_admin(user, f"run {type(stmt).__name__} statements on container services")
    database, schema = body.database, body.schema_
    if isinstance(stmt, ExecuteJobService):
        db, sch, name = _names(stmt.name, database, schema)
        spec_text = stmt.spec_text
        if spec_text is None:
            assert stmt.stage is not None and stmt.spec_file is not None
            spec_text = spcs.read_spec_file(session, cp, stmt.stage, stmt.spec_file, database, schema)
        row = spcs.record_job_service(
            session, cp, user, database=db, schema=sch, name=name, pool=stmt.pool, spec_text=spec_text
        )
        service_id, pool = row.id, row.compute_pool
        session.commit()
        dispatcher = cp.dispatcher
        assert isinstance(dispatcher, spcs.ServiceDispatcher)  # record_job_service checked it
        dispatcher.dispatch_service(pool, service_id)
        if stmt.is_async:
            return _result(body, ["status"], [[f"Job {name} submitted."]])
        ended = _wait(cp, service_id)
        if ended is None:
            return _result(body, ["status"], [[f"Job {name} was dropped while it ran."]])
        text = f"Job {name} completed with status: {ended.status}."
        if ended.message and ended.status != "DONE":
            text += f" {ended.message}"
        return _result(body, ["status"], [[text]])
    if isinstance(stmt, DropService):
        try:
            row = spcs.get_service(session, *_names(stmt.name, database, schema))
        except NotFoundError:
            if stmt.if_exists:
                return _result(
                    body, ["status"], [["Drop statement executed successfully (service already dropped)."]]
                )
            raise
        name = row.name
        spcs.drop_service(session, row)
        session.commit()
        return _result(body, ["status"], [[f"{name} successfully dropped."]])
    if isinstance(stmt, CreateService):
        return _create_service(body, stmt, session, cp, user)
    if isinstance(stmt, CreateServiceFunction):
        db, sch, name = _names(stmt.name, database, schema)
        target = _names(stmt.service, database, schema)
        if stmt.if_not_exists and functions.exists(session, db, sch, name):
            return _result(body, ["status"], [[f"{name} already exists, statement succeeded."]])
        functions.create_function(
            session,
            user,
            database=db,
            schema=sch,
            name=name,
            arguments=stmt.arguments,
            returns=stmt.returns,
            service=list(target),
            endpoint=stmt.endpoint,
            path=stmt.path,
            max_batch_rows=stmt.max_batch_rows,
            or_replace=stmt.or_replace,
        )
        session.commit()
        return _result(body, ["status"], [[f"Function {name} successfully created."]])
    if isinstance(stmt, DropFunction):
        db, sch, name = _names(stmt.name, database, schema)
        dropped = functions.drop_function(session, db, sch, name, if_exists=stmt.if_exists)
        session.commit()
        text = f"{name} successfully dropped." if dropped else "Drop statement executed successfully."
        return _result(body, ["status"], [[text]])
    if isinstance(stmt, ShowServices):
        # IN DATABASE d or IN d.s; without IN, the current database (as SHOW JOB SERVICES).
        parts: list[str | None] = [*stmt.in_parts] if stmt.in_parts else [database]
        in_db, in_schema = parts[0], parts[1] if len(parts) > 1 else None
        pattern = (
            re.compile(fnmatch.translate(stmt.like.replace("%", "*").replace("_", "?")), re.I)
            if stmt.like
            else None
        )
        rows = [
            _service_listing(r)
            for r in spcs.list_services(session, in_db, in_schema)
            if pattern is None or pattern.fullmatch(r.name)
        ]
        return _result(body, SERVICE_COLUMNS, rows)
    try:
        row = spcs.get_service(session, *_names(stmt.name, database, schema))
    except NotFoundError:
        if isinstance(stmt, AlterService) and stmt.if_exists:
            return _result(body, ["status"], [["Statement executed successfully."]])
        raise
    if isinstance(stmt, AlterService):
        if stmt.action == "SUSPEND":
            spcs.suspend(session, row)
            session.commit()
        elif spcs.resume(session, row):
            session.commit()
            _dispatch(cp, row.compute_pool, row.id)
        return _result(body, ["status"], [["Statement executed successfully."]])
    if isinstance(stmt, ShowEndpoints):
        return _result(body, ENDPOINT_COLUMNS, _endpoint_rows(cp, row))
    if isinstance(stmt, ServiceStatus):
        return _result(body, ["SYSTEM$GET_SERVICE_STATUS"], [[spcs.status_entries(row)]])
    assert isinstance(stmt, ServiceLogs)
    names = list(row.containers)
    if stmt.instance != 0:
        raise InvalidArgumentError(
            f"Service {row.name} has one instance, 0; instance {stmt.instance} does not exist."
        )
    if stmt.container not in names:
        raise InvalidArgumentError(
            f"Service {row.name} has no container {stmt.container!r}; its containers are {', '.join(names)}."
        )
    lines = spcs.read_logs(session, row, stmt.container, stmt.lines or 0)
    return _result(body, ["SYSTEM$GET_SERVICE_LOGS"], [["\n".join(lines)]])


SERVICE_COLUMNS = [
    "name",
    "status",
    "database_name",
    "schema_name",
    "owner",
    "compute_pool",
    "current_instances",
    "target_instances",
    "min_instances",
    "max_instances",
    "created_on",
    "is_job",
]
ENDPOINT_COLUMNS = ["name", "port", "port_range", "protocol", "is_public", "ingress_url"]


def _dispatch(cp: ControlPlane, pool: str, service_id: uuid.UUID) -> None:
    dispatcher = cp.dispatcher
    assert isinstance(dispatcher, spcs.ServiceDispatcher)  # recording the service checked it
    dispatcher.dispatch_service(pool, service_id)


def _create_service(
    body: SqlRequest, stmt: CreateService, session: SessionDep, cp: ControlPlane, user: Principal
) -> SqlResult:
    db, sch, name = _names(stmt.name, body.database, body.schema_)
    if stmt.if_not_exists:
        try:
            spcs.get_service(session, db, sch, name)
            return _result(body, ["status"], [[f"{name} already exists, statement succeeded."]])
        except NotFoundError:
            pass
    spec_text = stmt.spec_text
    if spec_text is None:
        assert stmt.stage is not None and stmt.spec_file is not None
        spec_text = spcs.read_spec_file(session, cp, stmt.stage, stmt.spec_file, body.database, body.schema_)
    row = spcs.record_service(
        session,
        cp,
        user,
        database=db,
        schema=sch,
        name=name,
        pool=stmt.pool,
        spec_text=spec_text,
        min_instances=stmt.min_instances,
        max_instances=stmt.max_instances,
    )
    service_id, pool = row.id, row.compute_pool
    session.commit()
    _dispatch(cp, pool, service_id)
    return _result(body, ["status"], [[f"Service {name} successfully created."]])


def _service_listing(row: ServiceRow) -> list[object]:
    schema = row.schema
    running = 1 if row.status in (spcs.READY, "RUNNING") else 0
    return [
        row.name,
        row.status,
        schema.database.name,
        schema.name,
        row.owner,
        row.compute_pool,
        running,
        0 if row.status == spcs.SUSPENDED else row.max_instances,
        row.min_instances,
        row.max_instances,
        row.created_at.isoformat(),
        row.kind == spcs.JOB,
    ]


def endpoint_path(database: str, schema: str, service: str, endpoint: str) -> str:
    return f"/api/v1/services/{database}/{schema}/{service}/endpoints/{endpoint}/"


def _endpoint_rows(cp: ControlPlane, row: ServiceRow) -> list[list[object]]:
    schema = row.schema
    rows: list[list[object]] = []
    for e in row.specification["spec"]["spec"].get("endpoints", []):
        public = bool(e.get("public"))
        url = (
            (cp.url or "") + endpoint_path(schema.database.name, schema.name, row.name, e["name"])
            if public
            else ""
        )
        rows.append([e["name"], e["port"], None, e.get("protocol", "HTTP"), public, url])
    return rows


# -- the authenticated proxy to public endpoints -----------------------------------------------------

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailers",
        "transfer-encoding",
        "upgrade",
        "host",
        "authorization",
        "content-length",
    }
)


def proxy(
    database: str,
    schema: str,
    service: str,
    endpoint: str,
    path: str,
    request: Request,
    session: SessionDep,
    _: UserDep,
) -> StreamingResponse:
    """Forward a request to a public endpoint of a READY service; the caller's runbatch token is checked
    here and not passed on (a service never sees it)."""
    row = spcs.get_service(session, database, schema, service)
    address = spcs.endpoint_address(row, endpoint)
    session.close()  # the stream may be long; the metadata connection is not needed for it
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
    url = f"http://{address}/{path}"
    client = httpx.Client(timeout=httpx.Timeout(10.0, read=None))
    try:
        upstream = client.send(
            client.build_request(
                request.method, url, params=request.query_params, headers=headers, content=_body(request)
            ),
            stream=True,
        )
    except httpx.HTTPError as exc:
        client.close()
        raise ServiceUnavailableError(
            f"Endpoint {endpoint!r} of service {service} did not answer: {exc}"
        ) from None

    def _close() -> None:
        upstream.close()
        client.close()

    return StreamingResponse(
        upstream.iter_raw(),
        status_code=upstream.status_code,
        headers={k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_BY_HOP},
        background=BackgroundTask(_close),
    )


def _body(request: Request) -> bytes:
    """The request body, read in this worker thread (the route is synchronous)."""
    import anyio.from_thread

    return anyio.from_thread.run(request.body)


# -- the worker side ---------------------------------------------------------------------------------


@router.post("/{service_id}/claim", response_model=ServiceWork)
def claim(
    service_id: uuid.UUID, body: ServiceClaim, session: SessionDep, cp: ControlPlaneDep, _: UserDep
) -> JSONResponse:
    """Win a service before starting its containers; 409 when it is not PENDING any more."""
    row = spcs.claim(session, service_id, body.worker)
    work = spcs.build_work(session, cp, row)
    session.commit()
    return JSONResponse(work.model_dump(mode="json", context={"secrets": "reveal"}))


@router.post("/{service_id}/heartbeat")
def heartbeat(service_id: uuid.UUID, body: ServiceBeat, session: SessionDep, _: UserDep) -> ServiceAck:
    """The worker's report on its containers; the answer tells it to stop (dropped or suspended)."""
    stop = spcs.beat(
        session,
        service_id,
        body.attempt,
        ready=body.ready,
        endpoints=body.endpoints,
        containers=body.containers,
    )
    session.commit()
    return ServiceAck(stop=stop)


@router.post("/{service_id}/logs", status_code=status.HTTP_204_NO_CONTENT)
def logs(service_id: uuid.UUID, body: ServiceLogBatch, session: SessionDep, _: UserDep) -> None:
    spcs.append_logs(session, service_id, body.attempt, body.container, body.lines)
    session.commit()


@router.post("/{service_id}/exit", status_code=status.HTTP_204_NO_CONTENT)
def exit_(service_id: uuid.UUID, body: ServiceExit, session: SessionDep, _: UserDep) -> None:
    spcs.finish(session, service_id, body.attempt, body.status, body.exit_code, body.message, body.containers)
    session.commit()


# One route per method: a route with several methods gets one OpenAPI operation id for all of them.
for _method in ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
    router.add_api_route(
        "/{database}/{schema}/{service}/endpoints/{endpoint}/{path:path}",
        proxy,
        methods=[_method],
        name=f"proxy_{_method.lower()}",
        response_class=StreamingResponse,
    )
