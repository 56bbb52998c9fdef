"""``RunbatchStageSensor``: wait for ``_SUCCESS`` (run_batch's completion file) under a stage location."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseSensorOperator
from airflow.sdk.exceptions import AirflowException

from runbatch.airflow.hook import DEFAULT_CONN_ID, RunbatchHook
from runbatch.airflow.triggers import RunbatchStageFileTrigger
from runbatch.stage.paths import StagePath, parse_stage_path

__all__ = ["RunbatchStageSensor"]


class RunbatchStageSensor(BaseSensorOperator):
    """Succeeds once ``file_name`` exists directly under ``stage_location``.

    Read a job's output only after its ``_SUCCESS`` file is there (Snowflake's sentinel-file best
    practice). ``stage_location`` is templated, e.g.
    ``"{{ ti.xcom_pull(task_ids='score')['output_stage_location'] }}"``. With ``deferrable=True``
    (the default) the wait happens in the triggerer; ``timeout`` bounds it either way.
    """

    template_fields: Sequence[str] = ("stage_location", "file_name", "database", "schema")
    ui_color = "#29b5e8"

    def __init__(
        self,
        *,
        stage_location: str,
        file_name: str = "_SUCCESS",
        database: str | None = None,
        schema: str | None = None,
        runbatch_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.stage_location = stage_location
        self.file_name = file_name
        self.database = database
        self.schema = schema
        self.runbatch_conn_id = runbatch_conn_id
        self.deferrable = deferrable

    def _location(self) -> StagePath:
        return parse_stage_path(self.stage_location, database=self.database, schema=self.schema)

    def poke(self, context: Any) -> bool:
        location = self._location()
        wanted = location.child(self.file_name).path
        client = RunbatchHook(self.runbatch_conn_id).get_conn()
        try:
            files = client.list_stage_files(
                location.database,
                location.schema,
                location.stage,
                path=location.path + "/" if location.path else "",
            )
        finally:
            client.close()
        found = any(f.path == wanted for f in files)
        self.log.info("%s %s under %s", "Found" if found else "No", self.file_name, location.as_dir())
        return found

    def execute(self, context: Any) -> str | None:
        if not self.deferrable:
            super().execute(context)
            return self._location().as_dir()
        if self.poke(context):
            return self._location().as_dir()
        location = self._location()
        self.defer(
            trigger=RunbatchStageFileTrigger(
                location.database,
                location.schema,
                location.stage,
                location.path,
                file_name=self.file_name,
                runbatch_conn_id=self.runbatch_conn_id,
                poll_interval=self.poke_interval,
            ),
            method_name="execute_complete",
            timeout=self.timeout,
        )
        return None  # not reached: defer() raises

    def execute_complete(self, context: Any, event: dict[str, Any]) -> str:
        if event["status"] != "success":
            raise AirflowException(
                f"Waiting for {self.file_name} under {event['location']} failed: {event['message']}"
            )
        return str(event["location"])
