"""Service functions: SQL functions whose rows a service endpoint computes, in Snowflake's protocol.

A query naming one gets a DuckDB Python UDF (``type='arrow'``) that sends its rows in batches
(``{"data": [[row_index, arg, ...], ...]}``) to the endpoint, several batches at a time, retries a
batch on a 5xx or a dropped connection, and puts the answers (``{"data": [[row_index, value],
...]}``) back in row order whatever order they come in.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import duckdb
import duckdb.func
import httpx
import pyarrow as pa
from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.errors import AlreadyExistsError, InvalidArgumentError, NotFoundError, ServiceUnavailableError
from runbatch.identifiers import qualified
from server.auth.tokens import Principal
from server.db.tables import ServiceFunctionRow, ServiceRow
from server.resources import service as resources

__all__ = [
    "BATCH_ROWS",
    "TYPES",
    "call_batches",
    "create_function",
    "drop_function",
    "exists",
    "register_service_functions",
]

BATCH_ROWS = 1000  # rows per request unless the function says MAX_BATCH_ROWS
_PARALLEL = 4
_ATTEMPTS = 3
# Snowflake type names -> (DuckDB type, Arrow type).
TYPES: dict[str, tuple[str, pa.DataType]] = {
    "VARCHAR": ("VARCHAR", pa.string()),
    "STRING": ("VARCHAR", pa.string()),
    "TEXT": ("VARCHAR", pa.string()),
    "NUMBER": ("BIGINT", pa.int64()),
    "INT": ("BIGINT", pa.int64()),
    "INTEGER": ("BIGINT", pa.int64()),
    "BIGINT": ("BIGINT", pa.int64()),
    "FLOAT": ("DOUBLE", pa.float64()),
    "DOUBLE": ("DOUBLE", pa.float64()),
    "REAL": ("DOUBLE", pa.float64()),
    "BOOLEAN": ("BOOLEAN", pa.bool_()),
}


def _type(text: str, where: str) -> str:
    name = text.upper()
    if name not in TYPES:
        raise InvalidArgumentError(
            f"{where} has type {text}; service functions take and return {', '.join(sorted(TYPES))}."
        )
    return name


def create_function(
    session: Session,
    principal: Principal,
    *,
    database: str,
    schema: str,
    name: str,
    arguments: list[tuple[str, str]],
    returns: str,
    service: list[str],
    endpoint: str,
    path: str,
    max_batch_rows: int | None,
    or_replace: bool,
) -> ServiceFunctionRow:
    schema_row = resources.get_schema(session, database, schema)
    args = [[arg, _type(kind, f"Argument {arg}")] for arg, kind in arguments]
    ret = _type(returns, "RETURNS")
    if not path.startswith("/"):
        raise InvalidArgumentError(
            f"AS {path!r}: the path on the endpoint starts with '/', e.g. AS '/predict'."
        )
    if max_batch_rows is not None and max_batch_rows < 1:
        raise InvalidArgumentError("MAX_BATCH_ROWS must be at least 1.")
    target = _service(session, service)
    declared = {
        e["name"].lower(): e["name"] for e in target.specification["spec"]["spec"].get("endpoints", [])
    }
    if endpoint.lower() not in declared:
        raise NotFoundError(
            f"Service {target.name} has no endpoint {endpoint!r}; its endpoints are "
            f"{', '.join(sorted(declared.values())) or 'none'}."
        )
    endpoint = declared[endpoint.lower()]
    existing = session.scalars(
        select(ServiceFunctionRow).where(
            ServiceFunctionRow.schema_id == schema_row.id, ServiceFunctionRow.name == name
        )
    ).one_or_none()
    if existing is not None:
        if not or_replace:
            raise AlreadyExistsError(
                f"Function {qualified(database, schema, name)} already exists. Use CREATE OR REPLACE FUNCTION."
            )
        session.delete(existing)
        session.flush()
    row = ServiceFunctionRow(
        schema_id=schema_row.id,
        name=name,
        arguments=args,
        returns=ret,
        service=qualified(target.schema.database.name, target.schema.name, target.name),
        endpoint=endpoint,
        path=path,
        max_batch_rows=max_batch_rows,
        owner=principal.name,
    )
    session.add(row)
    session.flush()
    return row


def _service(session: Session, parts: list[str]) -> ServiceRow:
    from server.spcs.service import get_service

    if len(parts) != 3:
        raise InvalidArgumentError("A service function names its service by DB.SCHEMA.NAME.")
    return get_service(session, parts[0], parts[1], parts[2])


def exists(session: Session, database: str, schema: str, name: str) -> bool:
    schema_row = resources.get_schema(session, database, schema)
    return (
        session.scalars(
            select(ServiceFunctionRow.id).where(
                ServiceFunctionRow.schema_id == schema_row.id, ServiceFunctionRow.name == name
            )
        ).first()
        is not None
    )


def drop_function(session: Session, database: str, schema: str, name: str, *, if_exists: bool) -> bool:
    schema_row = resources.get_schema(session, database, schema)
    row = session.scalars(
        select(ServiceFunctionRow).where(
            ServiceFunctionRow.schema_id == schema_row.id, ServiceFunctionRow.name == name
        )
    ).one_or_none()
    if row is None:
        if if_exists:
            return False
        raise NotFoundError(f"Function {qualified(database, schema, name)} does not exist or not authorized.")
    session.delete(row)
    session.flush()
    return True


def register_service_functions(
    session: Session,
    connection: duckdb.DuckDBPyConnection,
    sql: str,
    database: str | None,
    schema: str | None,
) -> None:
    """Register the service functions of the current schema that ``sql`` calls (by unqualified name)."""
    if database is None or schema is None:
        return
    try:
        schema_row = resources.get_schema(session, database, schema)
    except NotFoundError:
        return
    for row in session.scalars(
        select(ServiceFunctionRow).where(ServiceFunctionRow.schema_id == schema_row.id)
    ):
        if not re.search(rf"(?<![\w$.\"]){re.escape(row.name)}\s*\(", sql, re.IGNORECASE):
            continue
        udf = _udf(_endpoint_url(session, row), TYPES[row.returns][1], row.max_batch_rows or BATCH_ROWS)
        connection.create_function(
            row.name,
            udf,
            [TYPES[kind][0] for _, kind in row.arguments],
            TYPES[row.returns][0],
            type=duckdb.func.ARROW,
            null_handling=duckdb.func.SPECIAL,
            side_effects=True,
        )


def _udf(url: str, returns: pa.DataType, batch_rows: int) -> Callable[..., pa.Array]:
    """The UDF body; DuckDB reads its parameters from its signature, so it takes the columns only."""

    def udf(*columns: pa.Array) -> pa.Array:
        return pa.array(
            call_batches(url, [c.to_pylist() for c in columns], batch_rows, httpx.post), type=returns
        )

    return udf


def _endpoint_url(session: Session, row: ServiceFunctionRow) -> str:
    from server.spcs.service import READY

    parts = row.service.split(".")
    service = _service(session, parts)
    if service.status != READY or row.endpoint not in service.endpoints:
        raise ServiceUnavailableError(
            f"Function {row.name} calls service {row.service}, which is {service.status}, not READY. Wait for it "
            "(SHOW SERVICES) or ALTER SERVICE ... RESUME it."
        )
    return f"http://{service.endpoints[row.endpoint]}{row.path}"


def call_batches(
    url: str, columns: list[list[Any]], batch_rows: int, post: Callable[..., httpx.Response]
) -> list[Any]:
    """Values for every row, in row order: batches go out in parallel, each retried on a 5xx."""
    count = len(columns[0]) if columns else 0
    rows = [[i, *(c[i] for c in columns)] for i in range(count)]
    batches = [rows[start : start + batch_rows] for start in range(0, count, batch_rows)]
    results: list[Any] = [None] * count
    with ThreadPoolExecutor(max_workers=_PARALLEL) as pool:
        for batch, answer in zip(batches, pool.map(lambda b: _send(url, b, post), batches), strict=True):
            got: dict[int, Any] = {}
            for item in answer:
                if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], int):
                    raise InvalidArgumentError(
                        f"The service function endpoint {url} answered a row as {item!r}; each row must be "
                        "[row_index, value]."
                    )
                got[item[0]] = item[1]
            expected = {r[0] for r in batch}
            if set(got) != expected:
                raise InvalidArgumentError(
                    f"The service function endpoint {url} answered rows {sorted(set(got) ^ expected)[:5]} that do not "
                    f"match the {len(batch)} rows sent (row indexes {batch[0][0]}..{batch[-1][0]})."
                )
            for index, value in got.items():
                results[index] = value
    return results


def _send(url: str, batch: list[list[Any]], post: Callable[..., httpx.Response]) -> list[Any]:
    for attempt in range(_ATTEMPTS):
        try:
            response = post(url, json={"data": batch}, timeout=60.0)
        except httpx.TransportError as exc:
            if attempt + 1 == _ATTEMPTS:
                raise ServiceUnavailableError(
                    f"The service function endpoint {url} did not answer: {exc}"
                ) from None
        else:
            if response.status_code < 500:
                break
            if attempt + 1 == _ATTEMPTS:
                raise ServiceUnavailableError(
                    f"The service function endpoint {url} answered HTTP {response.status_code} {_ATTEMPTS} times: "
                    f"{response.text[:200]}"
                )
        time.sleep(0.2 * 2**attempt)
    if response.is_error:
        raise InvalidArgumentError(
            f"The service function endpoint {url} refused a batch: HTTP {response.status_code} {response.text[:200]}"
        )
    try:
        data = response.json()["data"]
    except (ValueError, KeyError, TypeError):
        raise InvalidArgumentError(
            f"The service function endpoint {url} answered {response.text[:200]!r}; it must answer JSON "
            '{"data": [[row_index, value], ...]}.'
        ) from None
    if not isinstance(data, list):
        raise InvalidArgumentError(f'The service function endpoint {url} answered "data" that is not a list.')
    return data
