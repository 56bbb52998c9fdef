"""Registry: log, find and delete models in one schema, as ``snowflake.ml.registry.Registry``."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, overload

import pandas as pd

from runbatch.errors import InvalidArgumentError, NotFoundError, UnsupportedError
from runbatch.identifiers import (
    complete_name,
    format_identifier,
    parse_qualified_name,
    qualified,
    resolve_identifier,
)
from runbatch.ml.model._model import Model
from runbatch.ml.model._model_version import ModelVersion
from runbatch.ml.model.task import Task
from runbatch.ml.monitoring.entities.model_monitor_config import ModelMonitorConfig, ModelMonitorSourceConfig
from runbatch.ml.monitoring.model_monitor import ModelMonitor
from runbatch.packager import save_model
from runbatch.packager.package import repackage
from runbatch.snowpark.row import Row
from runbatch.snowpark.session import Session
from runbatch.wire.listings import MODEL_COLUMNS, model_listing
from runbatch.wire.monitors import MONITOR_COLUMNS, MonitorCreate, monitor_listing

__all__ = ["Registry"]

_MODEL_MONITORING_DISABLED_ERROR = (
    "Must enable monitoring to use this method. "
    'Please set `options={"enable_monitoring": True}` in the Registry'
)


def _tar_stream(root: Path) -> Iterator[bytes]:
    """An uncompressed tar of ``root`` produced chunk by chunk (the model is never held whole)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w|") as tar:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                tar.add(path, arcname=path.relative_to(root).as_posix())
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


class Registry:
    def __init__(
        self,
        session: Session,
        *,
        database_name: str | None = None,
        schema_name: str | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        conn = session._conn
        if database_name:
            db = resolve_identifier(database_name)
        elif conn.database:
            db = conn.database
        else:
            raise ValueError("You need to provide a database to use registry.")
        if schema_name:
            schema = resolve_identifier(schema_name)
        elif database_name:
            schema = "PUBLIC"
        else:
            schema = conn.schema or "PUBLIC"
        try:
            conn.client.get_database(db)
        except NotFoundError:
            raise ValueError(f"Database {qualified(db)} does not exist.") from None
        try:
            conn.client.get_schema(db, schema)
        except NotFoundError:
            raise ValueError(f"Schema {qualified(schema)} does not exist.") from None
        self._session = session
        self._database = db
        self._schema = schema
        self._options = options or {}
        self.enable_monitoring = options.get("enable_monitoring", True) if options else True

    @property
    def location(self) -> str:
        return qualified(self._database, self._schema)

    def _model_parts(self, model_name: str) -> tuple[str, str, str]:
        try:
            parts = parse_qualified_name(model_name)
        except ValueError:
            raise ValueError(
                f"(2110) The model_name `{model_name}` cannot be parsed as a SQL identifier. Alphanumeric characters "
                "and underscores are permitted. See https://docs.snowflake.com/en/sql-reference/identifiers-syntax "
                "for more information."
            ) from None
        db, sch, name = complete_name(parts, self._database, self._schema)
        assert db is not None and sch is not None
        return db, sch, name

    def log_model(
        self,
        model: Any,
        *,
        model_name: str,
        version_name: str | None = None,
        comment: str | None = None,
        metrics: dict[str, Any] | None = None,
        conda_dependencies: list[str] | None = None,
        pip_requirements: list[str] | None = None,
        artifact_repository_map: dict[str, str] | None = None,
        resource_constraint: dict[str, str] | None = None,
        target_platforms: list[Any] | None = None,
        python_version: str | None = None,
        signatures: dict[str, Any] | None = None,
        sample_input_data: Any = None,
        user_files: dict[str, list[str]] | None = None,
        code_paths: list[str] | None = None,
        ext_modules: list[Any] | None = None,
        task: Task = Task.UNKNOWN,
        options: dict[str, Any] | None = None,
    ) -> ModelVersion:
        """Package ``model`` and store it as a new version (the first version becomes the default)."""
        conn = self._session._conn
        db, sch, name = self._model_parts(model_name)
        version = resolve_identifier(version_name) if version_name else None
        exported = isinstance(model, str | os.PathLike) and Path(model).is_dir()
        if isinstance(model, ModelVersion) or exported:
            others = [
                comment,
                conda_dependencies,
                pip_requirements,
                artifact_repository_map,
                resource_constraint,
                target_platforms,
                python_version,
                signatures,
                sample_input_data,
                user_files,
                code_paths,
                ext_modules,
                options,
            ]
            what = "a ModelVersion" if isinstance(model, ModelVersion) else "an exported model folder"
            if any(o is not None for o in others[1:]):
                raise ValueError(
                    f"When calling log_model with {what}, only model_name and version_name may be specified."
                )
            if task is not Task.UNKNOWN:
                raise ValueError(f"`task` cannot be specified when calling log_model with {what}.")
        if isinstance(model, ModelVersion):
            if comment is not None:
                raise ValueError(
                    "When calling log_model with a ModelVersion, only model_name and version_name may be specified."
                )
            info = conn.client.add_version(db, sch, name, version, conn.client.download_version(*model._key))
            return ModelVersion._ref(self._session, info)
        if exported:
            # A folder ModelVersion.export() wrote, stored as it is (a runbatch extension).
            self._check_free(db, sch, name, version, model_name, version_name)
            with tempfile.TemporaryDirectory(prefix="runbatch-model-") as tmp:
                repackage(Path(model), Path(tmp))
                info = conn.client.add_version(db, sch, name, version, _tar_stream(Path(tmp)))
            return self._finish(ModelVersion._ref(self._session, info), comment, metrics)
        self._check_free(db, sch, name, version, model_name, version_name)
        with tempfile.TemporaryDirectory(prefix="runbatch-model-") as tmp:
            save_model(
                model,
                Path(tmp),
                name=name,
                signatures=signatures,
                sample_input_data=sample_input_data,
                options=options,
                pip_requirements=pip_requirements,
                conda_dependencies=conda_dependencies,
                python_version=python_version,
                task=task.value,
                code_paths=code_paths,
            )
            info = conn.client.add_version(db, sch, name, version, _tar_stream(Path(tmp)))
        return self._finish(ModelVersion._ref(self._session, info), comment, metrics)

    def _check_free(
        self, db: str, sch: str, name: str, version: str | None, model_name: str, version_name: str | None
    ) -> None:
        if version is None:
            return
        try:
            # Version names only: an alias (or DEFAULT/FIRST/LAST) of the same name is no clash.
            taken = {v.name for v in self._session._conn.client.list_versions(db, sch, name)}
        except NotFoundError:
            taken = set()
        if version in taken:
            raise InvalidArgumentError(
                f"Model {model_name} version {version_name} already existed. To auto-generate `version_name`, "
                "skip that argument."
            )

    @staticmethod
    def _finish(mv: ModelVersion, comment: str | None, metrics: dict[str, Any] | None) -> ModelVersion:
        if comment:
            mv.comment = comment
        for key, value in (metrics or {}).items():
            mv.set_metric(key, value)
        return mv

    def get_model(self, model_name: str) -> Model:
        db, sch, name = self._model_parts(model_name)
        try:
            self._session._conn.client.get_model(db, sch, name)
        except NotFoundError:
            raise NotFoundError(f"Unable to find model {model_name}") from None
        return Model._ref(self._session, db, sch, name)

    def models(self) -> list[Model]:
        return [
            Model._ref(self._session, m.database_name, m.schema_name, m.name)
            for m in self._session._conn.client.list_models(self._database, self._schema)
        ]

    def show_models(self) -> pd.DataFrame:
        """SHOW MODELS IN SCHEMA rows, as pandas (the rows the SQL statement returns)."""
        models = self._session._conn.client.list_models(self._database, self._schema)
        return pd.DataFrame([model_listing(m) for m in models], columns=MODEL_COLUMNS)

    def delete_model(self, model_name: str) -> None:
        db, sch, name = self._model_parts(model_name)
        self._session._conn.client.delete_model(db, sch, name)

    # -- monitoring -------------------------------------------------------------------------------
    def _monitor_parts(self, name: str) -> tuple[str, str, str]:
        db, sch, monitor = complete_name(parse_qualified_name(name), self._database, self._schema)
        assert db is not None and sch is not None
        return db, sch, monitor

    def add_monitor(
        self,
        name: str,
        source_config: ModelMonitorSourceConfig,
        model_monitor_config: ModelMonitorConfig,
    ) -> ModelMonitor:
        """Add a Model Monitor to the Registry (the source's columns are checked before it is created)."""
        if not self.enable_monitoring:
            raise ValueError(_MODEL_MONITORING_DISABLED_ERROR)
        mv = model_monitor_config.model_version
        function = model_monitor_config.model_function_name
        functions = mv.show_functions()
        if not any(f["target_method"] == function for f in functions):
            existing = {f["target_method"] for f in functions}
            raise ValueError(
                f"Function with name {function} does not exist in the given model version. Found: {existing}."
            )
        if mv.get_model_task() == Task.UNKNOWN:
            raise ValueError("Registry model must be logged with task in order to be monitored.")
        if source_config.timestamp_custom_metric_table is not None:
            raise UnsupportedError(
                "timestamp_custom_metric_table is not supported by runbatch monitors; leave it None."
            )
        db, sch, monitor = self._monitor_parts(name)
        model_db, model_sch, model_name, version_name = mv._key
        body = MonitorCreate(
            name=format_identifier(monitor),
            model_database=model_db,
            model_schema=model_sch,
            model_name=model_name,
            version_name=version_name,
            function_name=function,
            warehouse_name=resolve_identifier(model_monitor_config.background_compute_warehouse_name),
            source=source_config.source,
            baseline=source_config.baseline,
            timestamp_column=source_config.timestamp_column,
            id_columns=list(source_config.id_columns),
            prediction_score_columns=list(source_config.prediction_score_columns or []),
            prediction_class_columns=list(source_config.prediction_class_columns or []),
            actual_score_columns=list(source_config.actual_score_columns or []),
            actual_class_columns=list(source_config.actual_class_columns or []),
            segment_columns=list(source_config.segment_columns or []),
            custom_metric_columns=list(source_config.custom_metric_columns or []),
            refresh_interval=model_monitor_config.refresh_interval,
            aggregation_window=model_monitor_config.aggregation_window,
        )
        created = self._session._conn.client.create_monitor(db, sch, body)
        return ModelMonitor._ref(self._session._conn.client, db, sch, created.name)

    @overload
    def get_monitor(self, *, model_version: ModelVersion) -> ModelMonitor: ...

    @overload
    def get_monitor(self, *, name: str) -> ModelMonitor: ...

    def get_monitor(
        self, *, name: str | None = None, model_version: ModelVersion | None = None
    ) -> ModelMonitor:
        """Get a Model Monitor by name, or the one monitor of a model version."""
        if not self.enable_monitoring:
            raise ValueError(_MODEL_MONITORING_DISABLED_ERROR)
        client = self._session._conn.client
        if name is not None:
            db, sch, monitor = self._monitor_parts(name)
            try:
                client.get_monitor(db, sch, monitor)
            except NotFoundError:
                raise ValueError(f"Unable to find model monitor '{name}'") from None
            return ModelMonitor._ref(client, db, sch, monitor)
        if model_version is not None:
            model_db, model_sch, model_name, version_name = model_version._key
            found = [
                m
                for m in client.list_monitors(self._database, self._schema)
                if (m.model_database, m.model_schema, m.model_name, m.version_name)
                == (model_db, model_sch, model_name, version_name)
            ]
            if not found:
                raise ValueError("Unable to find model monitor for the given model version.")
            if len(found) > 1:
                raise ValueError("Found multiple model monitors for the given model version.")
            return ModelMonitor._ref(client, self._database, self._schema, found[0].name)
        raise ValueError("Must provide either `name` or `model_version` to get ModelMonitor")

    def show_model_monitors(self) -> list[Row]:
        """SHOW MODEL MONITORS rows of the registry's schema."""
        if not self.enable_monitoring:
            raise ValueError(_MODEL_MONITORING_DISABLED_ERROR)
        monitors = self._session._conn.client.list_monitors(self._database, self._schema)
        rows = [monitor_listing(m) for m in monitors]
        return [Row._with_fields(MONITOR_COLUMNS, [r[c] for c in MONITOR_COLUMNS]) for r in rows]

    def delete_monitor(self, name: str) -> None:
        """Delete a Model Monitor by name from the Registry."""
        if not self.enable_monitoring:
            raise ValueError(_MODEL_MONITORING_DISABLED_ERROR)
        db, sch, monitor = self._monitor_parts(name)
        self._session._conn.client.drop_monitor(db, sch, monitor)
