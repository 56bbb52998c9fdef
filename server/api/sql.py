"""POST /sql: run one statement in the caller's current database and schema.

Control statements answer JSON (``SqlResult``). A query (SELECT, WITH) answers an Arrow IPC
stream, which the client must accept (``Accept: application/vnd.apache.arrow.stream``).
COPY INTO @stage runs its query and writes the files here, then answers JSON.
"""

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from runbatch.errors import InvalidArgumentError
from runbatch.wire.resources import SqlRequest, SqlResult, is_query
from server.api.services import run_service_statement
from server.auth import privileges
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.spcs.image_repository_sql import is_image_repository_statement, run_image_repository_statement
from server.spcs.statements import is_service_statement
from server.sql.executor import execute_sql
from server.sql.results import ARROW_STREAM, open_query
from server.sql.unload import is_copy, plan_unload

router = APIRouter(tags=["sql"])


@router.post(
    "/sql",
    response_model=SqlResult,
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "A query's rows as an Arrow IPC stream"}},
)
def run_sql(
    body: SqlRequest, request: Request, session: SessionDep, cp: ControlPlaneDep, user: UserDep
) -> SqlResult | StreamingResponse | Response:
    """Execute one statement; a control statement's result says which database and schema are current."""
    if is_service_statement(body.sql):
        return run_service_statement(body, request, session, cp, user)
    if is_image_repository_statement(body.sql):
        return run_image_repository_statement(session, cp, user, body)
    if is_query(body.sql) or is_copy(body.sql):
        privileges.require_query(user)
    if is_query(body.sql):
        if ARROW_STREAM not in request.headers.get("accept", ""):
            raise InvalidArgumentError(
                f"A query's rows stream as Arrow IPC: send 'Accept: {ARROW_STREAM}' (the runbatch SDK does)."
            )
        result = open_query(
            session, cp.storage, cp.secrets, body.sql, database=body.database, schema=body.schema_
        )
        # Metadata lookups are done: release the connection before the (possibly long) stream.
        session.close()
        result.prefetch()
        return StreamingResponse(result.chunks(), media_type=ARROW_STREAM)
    if is_copy(body.sql):
        unload = plan_unload(
            session, cp.storage, cp.secrets, body.sql, database=body.database, schema=body.schema_
        )
        # As for a query: the files are written after the metadata connection is released.
        session.close()
        return unload.run()
    execution = execute_sql(
        session, cp.storage, cp.secrets, user, body.sql, database=body.database, schema=body.schema_
    )
    session.commit()
    for action in execution.after_commit:
        action()
    return execution.result
