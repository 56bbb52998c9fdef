"""POST /sql: run one control statement in the caller's current database and schema."""

from fastapi import APIRouter

from runbatch.wire.resources import SqlRequest, SqlResult
from server.deps import ControlPlaneDep, SessionDep, UserDep
from server.sql.executor import execute_sql

router = APIRouter(tags=["sql"])


@router.post("/sql")
def run_sql(body: SqlRequest, session: SessionDep, cp: ControlPlaneDep, user: UserDep) -> SqlResult:
    """Execute one statement; the result says which database and schema are current afterwards."""
    execution = execute_sql(
        session, cp.storage, cp.secrets, user, body.sql, database=body.database, schema=body.schema_
    )
    session.commit()
    for action in execution.after_commit:
        action()
    return execution.result
