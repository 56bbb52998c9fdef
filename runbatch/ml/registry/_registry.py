"""Registry: log, find and delete models in one schema, as ``snowflake.ml.registry.Registry``."""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from runbatch.errors import InvalidArgumentError, NotFoundError
from runbatch.identifiers import complete_name, parse_qualified_name, qualified, resolve_identifier
from runbatch.ml.model._model import Model
from runbatch.ml.model._model_version import ModelVersion
from runbatch.ml.model.task import Task
from runbatch.packager import save_model
from runbatch.packager.package import repackage
from runbatch.snowpark.session import Session
from runbatch.wire.listings import MODEL_COLUMNS, model_listing

__all__ = ["Registry"]


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
