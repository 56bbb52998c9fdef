"""Model services: a long-running service whose one container serves a model version online.

A model service is an ordinary service (``CREATE SERVICE``'s machinery: a worker keeps it
running, its readiness probe decides READY, endpoints go through the control plane), with a
specification written here: the runtime image running ``runbatch.runtime.inference_server`` on
Snowflake's port 5000 (endpoint ``inference``), and the model version copied into a volume of the
service's own that is never copied back (the stored version cannot change). What ties the service to its version is kept in the service's ``specification`` JSON
(``model``, ``runtime`` and the ``model`` volume's reference), so no table changes.
"""

from __future__ import annotations

import json
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session

from runbatch.compute import parse_gpu
from runbatch.errors import InvalidArgumentError, NotFoundError, ServiceUnavailableError, UnsupportedError
from runbatch.identifiers import qualified
from runbatch.ml.model.inference_engine import InferenceEngine
from runbatch.wire.model_services import INFERENCE_ENDPOINT, ModelServiceCreate, ModelServicePublic
from runbatch.wire.services import RuntimeImage, VolumeWork
from server.auth import privileges
from server.auth.tokens import Principal
from server.control_plane import ControlPlane
from server.db.tables import ModelVersionRow, ServiceRow
from server.jobs.states import JobStatus
from server.registry import service as registry
from server.spcs import service as spcs

__all__ = [
    "CONTAINER",
    "MODEL_MOUNT",
    "create_model_service",
    "delete_model_service",
    "function_paths",
    "inference_address",
    "list_model_services",
    "model_volume",
    "runtime_of",
]

CONTAINER = "model-inference"
MODEL_MOUNT = "/runbatch/model"
_PORT = 5000
_HEALTH = "/health"


def function_paths(version: ModelVersionRow) -> dict[str, str]:
    """SQL function name -> path on the inference server, for the row functions (not table functions)."""
    return {
        f.name: "/" + f.target_method.lower().replace("_", "-")
        for f in registry.functions_of(version.spec)
        if f.target_method_function_type != "TABLE_FUNCTION"
    }


def _model_ref(version: ModelVersionRow) -> dict[str, str]:
    model = version.model
    return {
        "database": model.schema.database.name,
        "schema": model.schema.name,
        "model": model.name,
        "version": version.name,
    }


def _engine(options: dict[str, Any] | None, gpu: bool) -> tuple[str | None, list[str]]:
    """Snowflake's ``inference_engine_options``: ``engine`` and ``engine_args_override``."""
    if not options:
        return None, []
    unknown = sorted(set(options) - {"engine", "engine_args_override"})
    if unknown:
        raise InvalidArgumentError(
            f"inference_engine_options has unknown key(s) {unknown}; it takes 'engine' and 'engine_args_override'."
        )
    engine = InferenceEngine.from_value(options.get("engine") or InferenceEngine.PYTHON_GENERIC.value)
    args = options.get("engine_args_override") or []
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise InvalidArgumentError(
            "inference_engine_options['engine_args_override'] must be a list of strings."
        )
    if engine is InferenceEngine.VLLM and not gpu:
        raise InvalidArgumentError(
            "The vLLM engine runs on GPUs: set gpu_requests (e.g. gpu_requests='1') on a GPU compute pool."
        )
    return (engine.value if engine is InferenceEngine.VLLM else None), list(args)


def _specification(version: ModelVersionRow, body: ModelServiceCreate) -> tuple[str, dict[str, Any]]:
    """The service specification (YAML, as SHOW/DESCRIBE would show it) and the runtime the worker picks."""
    gpu = bool(body.gpu_requests) and parse_gpu(body.gpu_requests or "0") > 0
    engine, engine_args = _engine(body.inference_engine_options, gpu)
    env: dict[str, str] = {
        "RUNBATCH_MODEL_DIR": MODEL_MOUNT,
        "RUNBATCH_NUM_WORKERS": str(body.num_workers or 1),
        # The model's copy is the service's own and never copied back: no bytecode written next to its code.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if body.max_batch_rows:
        env["RUNBATCH_MAX_BATCH_ROWS"] = str(body.max_batch_rows)
    if engine:
        env["RUNBATCH_INFERENCE_ENGINE"] = engine
        env["RUNBATCH_INFERENCE_ENGINE_ARGS"] = json.dumps(engine_args)
    requests = {
        k: v
        for k, v in (
            ("cpu", body.cpu_requests),
            ("memory", body.memory_requests),
            ("nvidia.com/gpu", body.gpu_requests),
        )
        if v
    }
    kind = "gpu" if gpu else "cpu"
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": f"runbatch-runtime:{kind}",
        "command": ["python", "-m", "runbatch.runtime.inference_server"],
        "env": env,
        "readinessProbe": {"port": _PORT, "path": _HEALTH},
        "volumeMounts": [{"name": "model", "mountPath": MODEL_MOUNT}],
    }
    if requests:
        container["resources"] = {"requests": requests}
    spec = {
        "spec": {
            "containers": [container],
            "endpoints": [{"name": INFERENCE_ENDPOINT, "port": _PORT, "public": body.ingress_enabled}],
            "volumes": [{"name": "model", "source": "local"}],
        }
    }
    model_env = version.spec.get("env") or {}
    runtime = RuntimeImage(
        kind=kind,
        pip_requirements=list(model_env.get("pip_requirements") or []),
        conda_dependencies=list(model_env.get("conda_dependencies") or []),
        python_version=model_env.get("python_version"),
    )
    return yaml.safe_dump(spec, sort_keys=False), runtime.model_dump(mode="json")


def create_model_service(
    session: Session,
    cp: ControlPlane,
    principal: Principal,
    version: ModelVersionRow,
    body: ModelServiceCreate,
) -> ServiceRow:
    """Record the service (PENDING); the caller commits and dispatches it as CREATE SERVICE does."""
    functions = registry.functions_of(version.spec)
    if functions and all(f.target_method_function_type == "TABLE_FUNCTION" for f in functions):
        raise InvalidArgumentError(
            "Online inference services do not support TABLE_FUNCTION methods. The following methods have "
            f"TABLE_FUNCTION type: {', '.join(f.name for f in functions)}. Consider using batch inference jobs "
            "instead."
        )
    # record_service checks these too, in SQL's words; create_service callers pass Python arguments.
    if body.max_instances > 1:
        raise UnsupportedError(
            f"max_instances={body.max_instances}: runbatch runs one instance of a service. Pass max_instances=1 "
            "(the default), or create several services."
        )
    if body.min_instances > body.max_instances:
        raise InvalidArgumentError(
            f"min_instances={body.min_instances} is more than max_instances={body.max_instances}: runbatch runs "
            "one instance of a service. Pass min_instances=0 or 1."
        )
    spec_text, runtime = _specification(version, body)
    # Snowflake's default of 0 instances suspends an idle service; runbatch keeps one instance running.
    row = spcs.record_service(
        session,
        cp,
        principal,
        database=body.database,
        schema=body.schema_,
        name=body.name,
        pool=body.compute_pool,
        spec_text=spec_text,
        min_instances=max(1, body.min_instances),
        max_instances=body.max_instances,
    )
    row.specification = {
        **row.specification,
        "volumes": {"model": {"model": {**_model_ref(version), "artifact_key": version.artifact_key}}},
        "model": _model_ref(version),
        "runtime": runtime,
        "functions": function_paths(version),
    }
    session.flush()
    return row


def runtime_of(row: ServiceRow) -> RuntimeImage | None:
    """The runtime a model service's container runs in (None for a user's service)."""
    runtime = row.specification.get("runtime")
    return RuntimeImage.model_validate(runtime) if runtime else None


def model_volume(cp: ControlPlane, name: str, ref: dict[str, Any]) -> VolumeWork | None:
    """The work order of a model service's model volume (None: ``ref`` is not one)."""
    model = ref.get("model")
    if not isinstance(model, dict):
        return None
    return VolumeWork(name=name, storage=cp.storage.config, prefix=model["artifact_key"], read_only=True)


def _of_version(row: ServiceRow, version: ModelVersionRow) -> bool:
    # A dropped service is gone for its version at once, as in Snowflake, while its worker stops it.
    dropped = row.status == JobStatus.CANCELLING
    return row.kind == spcs.SERVICE and not dropped and row.specification.get("model") == _model_ref(version)


def list_model_services(session: Session, version: ModelVersionRow) -> list[ServiceRow]:
    """The services of a version, in any schema (Snowflake lists them by the version, not by schema)."""
    rows = session.scalars(
        select(ServiceRow).where(ServiceRow.kind == spcs.SERVICE).order_by(ServiceRow.name)
    )
    return [row for row in rows if _of_version(row, version)]


def public(row: ServiceRow, base_url: str | None, endpoint_path: str) -> ModelServicePublic:
    schema = row.schema
    database = schema.database.name
    running = row.status in (spcs.READY, "RUNNING") and INFERENCE_ENDPOINT in row.endpoints
    declared = row.specification["spec"]["spec"].get("endpoints", [])
    ingress = bool(declared and declared[0].get("public"))
    container = row.containers.get(CONTAINER) or {}
    # Why the server is not up (an image that cannot be built, a model that cannot load) is the container's.
    message = row.message or (container.get("message", "") if container.get("status") == "FAILED" else "")
    return ModelServicePublic(
        name=qualified(database, schema.name, row.name),
        database_name=database,
        schema_name=schema.name,
        service_name=row.name,
        status=row.status,
        message=message,
        inference_endpoint=(base_url or "") + endpoint_path if ingress and row.status != "PENDING" else None,
        internal_endpoint=f"http://{row.endpoints[INFERENCE_ENDPOINT]}" if running else None,
        functions=dict(row.specification.get("functions") or {}),
        restarts=int(container.get("restarts") or 0),
    )


def delete_model_service(
    session: Session, version: ModelVersionRow, database: str, schema: str, name: str
) -> None:
    """Drop a service of this version; another version's service, or a user's, is not this call's to drop."""
    try:
        row = spcs.get_service(session, database, schema, name)
    except NotFoundError:
        row = None
    if row is None or not _of_version(row, version):
        raise NotFoundError(
            f"Service '{qualified(database, schema, name)}' does not exist or unauthorized or not associated with "
            "this model version."
        )
    spcs.drop_service(session, row)


def inference_address(
    session: Session, principal: Principal, database: str, schema: str, name: str, function: str
) -> tuple[ServiceRow, str, str]:
    """The service, host:port of its inference server and the path of ``function`` there, for
    ``mv.run(service_name=...)``. The endpoint need not be public: like a service function, the
    control plane reaches it on the caller's behalf, so the caller needs USAGE on the service's model
    and reaches only the functions the service was created with (not the server's other paths)."""
    where = qualified(database, schema, name)
    hidden = NotFoundError(f"Service {where} does not exist or not authorized.")
    try:
        row = spcs.get_service(session, database, schema, name)
    except NotFoundError:
        raise hidden from None
    ref = row.specification.get("model")
    if not isinstance(ref, dict):
        if not principal.is_admin:
            raise hidden  # a user's own service is not one a model's USAGE reaches
        raise InvalidArgumentError(
            f"Service {where} is not a model service; create one with ModelVersion.create_service()."
        )
    if not principal.is_admin:
        try:
            privileges.model_for(session, principal, "USAGE", ref["database"], ref["schema"], ref["model"])
        except NotFoundError:
            raise hidden from None
    functions: dict[str, str] = dict(row.specification.get("functions") or {})
    path = "/" + function.lower().replace("_", "-")
    if path not in functions.values():
        served = ", ".join(functions) or "none"
        raise NotFoundError(
            f"Service {where} has no function {function!r}; its functions are: {served}. Call one of them "
            "(mv.run(..., function_name=...))."
        )
    if row.status != spcs.READY or INFERENCE_ENDPOINT not in row.endpoints:
        hint = f" {row.message}" if row.message else ""
        raise ServiceUnavailableError(
            f"Service {where} is {row.status}, not READY.{hint} Wait until "
            f"mv.list_services() (or SHOW SERVICES) shows it READY; SELECT SYSTEM$GET_SERVICE_STATUS('{name}') "
            "and SYSTEM$GET_SERVICE_LOGS show what it is doing."
        )
    return row, str(row.endpoints[INFERENCE_ENDPOINT]), path
