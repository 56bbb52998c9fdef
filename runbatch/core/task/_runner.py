"""``python -m runbatch.core.task._runner --wait``: run one Python task of a DAG run.

The control plane starts this process ahead of time; it imports the SDK, then reads a
folder path from stdin (EOF: exit) where the control plane has left the task's callable
(cloudpickle), its run context (JSON), and the control plane's URL with a token that lives
as long as the task. The callable gets a ``Session`` connected to that control plane, in the
DAG's database and schema. The outcome goes back as ``result.json``; what the task prints
is its log.
SIGTERM (the run was dropped, timed out, or the control plane is stopping) raises
``TaskStopped`` inside the task, so a batch inference task can cancel its job on the way out.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback
from pathlib import Path
from types import FrameType

import cloudpickle

from runbatch.core.task import context as task_context
from runbatch.identifiers import format_identifier
from runbatch.wire.dags import TaskRunContext, TaskRunResult

__all__ = [
    "CONNECTION_FILE",
    "CONTEXT_FILE",
    "DEFINITION_FILE",
    "RESULT_FILE",
    "STARTED_FILE",
    "TaskStopped",
    "main",
]

DEFINITION_FILE = "definition.pkl"
CONTEXT_FILE = "context.json"
CONNECTION_FILE = "connection.json"
RESULT_FILE = "result.json"
# Touched when the task starts: its timeout counts from here.
STARTED_FILE = "started"


class TaskStopped(BaseException):
    """The control plane asked the task to stop (SIGTERM)."""


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise TaskStopped(f"The task was stopped (signal {signum}).")


def _write(folder: Path, result: TaskRunResult) -> None:
    tmp = folder / (RESULT_FILE + ".tmp")
    tmp.write_text(result.model_dump_json())
    tmp.replace(folder / RESULT_FILE)


def run(folder: Path) -> int:
    from runbatch.snowpark import Session

    os.chdir(folder)
    (folder / STARTED_FILE).touch()
    context = TaskRunContext.model_validate(json.loads((folder / CONTEXT_FILE).read_text()))
    connection = json.loads((folder / CONNECTION_FILE).read_text())
    run = task_context._activate(context)
    try:
        function = cloudpickle.loads((folder / DEFINITION_FILE).read_bytes())
        session = Session.builder.configs(
            {
                "url": connection["url"],
                "token": connection["token"],
                "database": format_identifier(context.database),
                "schema": format_identifier(context.schema_),
            }
        ).create()
        try:
            value = function(session)
        finally:
            session.close()
        if context.use_func_return_value and value is not None:
            run.return_value = str(value)
    except BaseException as exc:  # noqa: BLE001 - the task's failure is reported, whatever it is
        traceback.print_exc()
        sys.stderr.flush()
        message = str(exc)
        error = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        _write(folder, TaskRunResult(return_value=run.return_value, error=error, job_ids=run.job_ids))
        return 1
    _write(folder, TaskRunResult(return_value=run.return_value, job_ids=run.job_ids))
    return 0


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop)
    # Import what tasks use before waiting, so that a task starts warm.
    import runbatch.snowpark  # noqa: F401

    if argv[1:] == ["--wait"]:
        line = sys.stdin.readline().strip()
        if not line:
            return 0  # the control plane no longer needs this spare
        return run(Path(line))
    return run(Path(argv[1]))


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # The outcome is written and the output flushed: skip the interpreter's teardown (a second or
    # more with pandas and pyarrow loaded), which the run would otherwise wait for.
    os._exit(code)
