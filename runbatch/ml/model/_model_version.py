"""ModelVersion: one immutable version of a registered model, as ``snowflake.ml.model.ModelVersion``."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import tempfile
import warnings
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import pandas as pd

from runbatch import archive
from runbatch.errors import InvalidArgumentError, NotFoundError
from runbatch.identifiers import qualified, resolve_identifier
from runbatch.ml.model._signatures.core import ModelSignature
from runbatch.ml.model.task import Task
from runbatch.snowpark._connection import Connection
from runbatch.wire.registry import ModelVersionPublic

if TYPE_CHECKING:
    from runbatch.inference.function import LoadedModel
    from runbatch.ml.jobs import MLJob
    from runbatch.ml.model._service import ServiceDeployment
    from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec
    from runbatch.snowpark.dataframe import DataFrame
    from runbatch.snowpark.session import Session

__all__ = ["ExportMode", "ModelFunctionInfo", "ModelVersion"]


class ExportMode(Enum):
    MODEL = "model"
    FULL = "full"


class ModelFunctionInfo(TypedDict):
    name: str
    target_method: str
    target_method_function_type: str
    signature: ModelSignature
    is_partitioned: bool


_LOADED: dict[Path, LoadedModel] = {}


class ModelVersion:
    _session: Session
    _info: ModelVersionPublic

    def __init__(self) -> None:
        raise RuntimeError(
            "ModelVersion's initializer is not meant to be used. Use `version` from model instead."
        )

    @classmethod
    def _ref(cls, session: Session, info: ModelVersionPublic) -> ModelVersion:
        mv = object.__new__(cls)
        mv._session = session
        mv._info = info
        return mv

    @property
    def _conn(self) -> Connection:
        return self._session._conn

    @property
    def _key(self) -> tuple[str, str, str, str]:
        i = self._info
        return i.database_name, i.schema_name, i.model_name, i.name

    def _reload(self) -> ModelVersionPublic:
        self._info = self._conn.client.get_version(*self._key)
        return self._info

    # -- identity ---------------------------------------------------------------------------------
    @property
    def model_name(self) -> str:
        return qualified(self._info.model_name)

    @property
    def version_name(self) -> str:
        return qualified(self._info.name)

    @property
    def fully_qualified_model_name(self) -> str:
        return qualified(self._info.database_name, self._info.schema_name, self._info.model_name)

    def __repr__(self) -> str:
        return f"ModelVersion(\n  name='{self.model_name}',\n  version='{self.version_name}',\n)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelVersion) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def comment(self) -> str:
        return self._reload().comment or ""

    @comment.setter
    def comment(self, value: str) -> None:
        self._info = self._conn.client.update_version(*self._key, comment=value)

    description = comment

    # -- metrics and aliases ----------------------------------------------------------------------
    def show_metrics(self) -> dict[str, Any]:
        return dict(self._reload().metrics)

    def get_metric(self, metric_name: str) -> Any:
        metrics = self.show_metrics()
        if metric_name not in metrics:
            raise KeyError(f"Cannot find metric with name {metric_name}.")
        return metrics[metric_name]

    def set_metric(self, metric_name: str, value: Any) -> None:
        json.dumps(value)  # a TypeError here, as Snowflake raises for values JSON cannot hold
        self._info = self._conn.client.set_metric(*self._key, metric_name, value)

    def delete_metric(self, metric_name: str) -> None:
        try:
            self._info = self._conn.client.delete_metric(*self._key, metric_name)
        except NotFoundError:
            raise KeyError(f"Cannot find metric with name {metric_name}.") from None

    def set_alias(self, alias_name: str) -> None:
        db, sch, model, version = self._key
        self._conn.client.set_alias(db, sch, model, resolve_identifier(alias_name), version)

    def unset_alias(self, version_or_alias: str) -> None:
        db, sch, model, _ = self._key
        self._conn.client.unset_alias(db, sch, model, resolve_identifier(version_or_alias))

    def get_model_task(self) -> Task:
        return Task(self._info.spec.get("task", "UNKNOWN"))

    # -- functions --------------------------------------------------------------------------------
    def show_functions(self) -> list[ModelFunctionInfo]:
        return [
            ModelFunctionInfo(
                name=f.name,
                target_method=f.target_method,
                target_method_function_type=f.target_method_function_type,
                signature=ModelSignature.from_dict(f.signature),
                is_partitioned=f.is_partitioned,
            )
            for f in self._info.functions
        ]

    def _function(self, function_name: str | None) -> ModelFunctionInfo:
        functions = self.show_functions()
        if function_name is None:
            if len(functions) != 1:
                raise InvalidArgumentError(
                    f"There are more than 1 target methods available in the model {self.fully_qualified_model_name} "
                    f"version {self.version_name}. Please specify a `function_name` when calling the `run` method."
                )
            return functions[0]
        try:
            wanted = resolve_identifier(function_name)
        except ValueError:
            wanted = function_name
        for fn in functions:
            if fn["name"] == wanted or fn["target_method"] == function_name:
                return fn
        raise InvalidArgumentError(
            f"There is no method with name {function_name} available in the model {self.fully_qualified_model_name} "
            f"version {self.version_name}"
        )

    # -- local copies -----------------------------------------------------------------------------
    def _cache_root(self) -> Path:
        base = self._conn.home / "cache" if self._conn.home else Path.home() / ".runbatch" / "cache"
        server = hashlib.sha256(self._conn.client.base_url.encode()).hexdigest()[:12]
        return base / "client" / server

    def _local_copy(self) -> Path:
        """The whole version folder on local disk, downloaded once (versions are immutable)."""
        stamp = str(int(self._info.created_on.timestamp() * 1e6))
        target = self._cache_root().joinpath(*(_safe(p) for p in self._key)) / stamp
        if (target / "MANIFEST.yml").exists():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".download-"))
        try:
            _extract_stream(self._conn.client.download_version(*self._key), staging)
            try:
                os.rename(staging, target)
            except OSError:
                if not (target / "MANIFEST.yml").exists():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return target

    def _loaded(self) -> LoadedModel:
        from runbatch.inference.function import LoadedModel

        path = self._local_copy()
        if path not in _LOADED:
            _LOADED[path] = LoadedModel.from_dir(path)
        return _LOADED[path]

    # -- inference --------------------------------------------------------------------------------
    def run(
        self,
        X: pd.DataFrame | DataFrame,
        *,
        service_name: str | None = None,
        function_name: str | None = None,
        partition_column: str | None = None,
        strict_input_validation: bool = False,
        params: dict[str, Any] | None = None,
    ) -> pd.DataFrame | DataFrame:
        """Run a function on ``X`` in this process (Snowflake runs it in a warehouse).

        pandas in, pandas out (the output columns only); a runbatch DataFrame in, a DataFrame
        with the input columns and the outputs out.
        """
        from runbatch.ml.model._local_run import run_locally

        fn = self._function(function_name)
        if service_name:
            from runbatch.ml.model._service import remote_model

            # The same validation and typed outputs as a local run; the service computes the values.
            model = remote_model(self, service_name, fn)
        else:
            model = self._loaded()
        return run_locally(
            model,
            fn,
            X,
            params=params,
            strict=strict_input_validation,
            partition_column=partition_column,
        )

    def run_batch(
        self,
        X: DataFrame | pd.DataFrame,
        *,
        compute_pool: str,
        input_spec: InputSpec | None = None,
        output_spec: OutputSpec,
        job_spec: JobSpec | None = None,
        inference_engine_options: dict[str, Any] | None = None,
    ) -> MLJob[Any]:
        """Start a batch inference job over ``X``; results land as Parquet plus ``_SUCCESS`` under the output."""
        from runbatch.ml.model._batch import submit_batch

        return submit_batch(
            self,
            X,
            compute_pool=compute_pool,
            input_spec=input_spec,
            output_spec=output_spec,
            job_spec=job_spec,
            inference_engine_options=inference_engine_options,
        )

    # -- model services ---------------------------------------------------------------------------
    def create_service(
        self,
        *,
        service_name: str,
        image_build_compute_pool: str | None = None,
        service_compute_pool: str,
        image_repo: str | None = None,
        ingress_enabled: bool = False,
        min_instances: int = 0,
        max_instances: int = 1,
        cpu_requests: str | None = None,
        memory_requests: str | None = None,
        gpu_requests: str | int | None = None,
        num_workers: int | None = None,
        max_batch_rows: int | None = None,
        force_rebuild: bool = False,
        build_external_access_integration: str | None = None,
        build_external_access_integrations: list[str] | None = None,
        block: bool = True,
        autocapture: bool | None = None,
        inference_engine_options: dict[str, Any] | None = None,
        experimental_options: dict[str, Any] | None = None,
        feature_sources_per_function: dict[str, Any] | None = None,
    ) -> str | ServiceDeployment:
        """Start an online inference server for this version, one endpoint per function.

        The image is the worker's runtime image plus the model's requirements (built on the worker, once
        per environment), so ``image_build_compute_pool``, ``image_repo``, ``force_rebuild`` and the
        external access integrations have nothing to do here and are accepted as Snowflake's are.
        With ``block=True`` this waits until the service is READY.
        """
        from runbatch.ml.model._service import create_service

        if build_external_access_integration is not None:
            warnings.warn(
                "`build_external_access_integration` is deprecated. Please use `build_external_access_integrations` "
                "instead.",
                DeprecationWarning,
                stacklevel=2,
            )
            if build_external_access_integrations is not None:
                raise ValueError(
                    "`build_external_access_integration` and `build_external_access_integrations` cannot be set at "
                    "the same time. Please use `build_external_access_integrations` only."
                )
        _ = (image_build_compute_pool, image_repo, force_rebuild, experimental_options)
        return create_service(
            self,
            service_name=service_name,
            service_compute_pool=service_compute_pool,
            ingress_enabled=ingress_enabled,
            min_instances=min_instances,
            max_instances=max_instances,
            cpu_requests=cpu_requests,
            memory_requests=memory_requests,
            gpu_requests=gpu_requests,
            num_workers=num_workers,
            max_batch_rows=max_batch_rows,
            block=block,
            autocapture=autocapture,
            inference_engine_options=inference_engine_options,
            feature_sources_per_function=feature_sources_per_function,
        )

    def list_services(self) -> pd.DataFrame:
        """This version's services: name, status, inference_endpoint, internal_endpoint, autocapture_enabled."""
        from runbatch.ml.model._service import list_services

        return list_services(self)

    def delete_service(self, service_name: str) -> None:
        """Drop one of this version's services (``[db.][schema.]name``; the model's database and schema by
        default)."""
        from runbatch.ml.model._service import delete_service

        delete_service(self, service_name)

    # -- artifacts --------------------------------------------------------------------------------
    def export(self, target_path: str, *, export_mode: ExportMode = ExportMode.MODEL) -> None:
        """Copy the version's files (``model/`` only, or everything with FULL) to an empty folder."""
        target = Path(target_path)
        if target.is_file() or (target.is_dir() and any(target.iterdir())):
            raise ValueError(f"Target path {target_path} is a file or an non-empty folder.")
        target.mkdir(parents=True, exist_ok=True)
        subtree = "model" if export_mode is ExportMode.MODEL else ""
        _extract_stream(self._conn.client.download_version(*self._key, subtree=subtree), target)

    def load(self, *, force: bool = False, options: dict[str, Any] | None = None) -> Any:
        """The original model object (the class is re-instantiated for custom models)."""
        warnings.warn(
            "Loading model requires to have the exact the same environment as the one when logging the model, "
            "otherwise, the model might be not functional or some other problems might occur.",
            RuntimeWarning,
            stacklevel=2,
        )
        path = self._local_copy()
        warnings.warn(
            "Loading the model into memory. It will execute node in the model files.",
            RuntimeWarning,
            stacklevel=2,
        )
        from runbatch.packager import load_model

        model, _ = load_model(path)
        return model


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else f"%{ord(c):02X}" for c in name)


def _extract_stream(chunks: Any, target: Path) -> None:
    """Extract an uncompressed tar stream into ``target``, member by member (see runbatch.archive)."""
    with tempfile.TemporaryFile() as spool:
        for chunk in chunks:
            spool.write(chunk)
        spool.seek(0)
        with tarfile.open(fileobj=spool, mode="r:") as tar:
            archive.extract(tar, target)
