"""The rows of SHOW MODELS, SHOW VERSIONS IN MODEL and SHOW JOB SERVICES, from the wire schemas.

The SDK's ``show_models()`` / ``show_versions()`` frames and the server's SQL statements build
their rows here, so ``Registry.show_models()`` and ``session.sql("SHOW MODELS")`` never disagree.
JSON-valued columns hold JSON text, as Snowflake's do when fetched through Snowpark.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from runbatch.wire.jobs import JobPublic
from runbatch.wire.registry import ModelPublic, ModelVersionPublic

__all__ = [
    "JOB_SERVICE_COLUMNS",
    "MODEL_COLUMNS",
    "VERSION_COLUMNS",
    "job_service_listing",
    "model_listing",
    "version_listing",
]

MODEL_COLUMNS = [
    "created_on",
    "name",
    "model_type",
    "database_name",
    "schema_name",
    "comment",
    "owner",
    "default_version_name",
    "versions",
    "aliases",
]

VERSION_COLUMNS = [
    "created_on",
    "name",
    "aliases",
    "comment",
    "database_name",
    "schema_name",
    "model_name",
    "is_default_version",
    "functions",
    "metadata",
    "user_data",
    "model_type",
    "task",
    "python_version",
    "pip_requirements",
    "conda_dependencies",
    "cuda_version",
    "model_spec",
    "model_attributes",
    "runnable_in",
    "inference_services",
]

# SHOW SERVICES' columns (DESCRIBE SERVICE adds ``spec`` after ``compute_pool``).
JOB_SERVICE_COLUMNS = [
    "name",
    "status",
    "database_name",
    "schema_name",
    "owner",
    "compute_pool",
    "dns_name",
    "current_instances",
    "target_instances",
    "min_ready_instances",
    "min_instances",
    "max_instances",
    "auto_resume",
    "external_access_integrations",
    "created_on",
    "updated_on",
    "resumed_on",
    "suspended_on",
    "auto_suspend_secs",
    "comment",
    "owner_role_type",
    "query_warehouse",
    "is_job",
    "is_async_job",
    "spec_digest",
    "is_upgrading",
    "managing_object_domain",
    "managing_object_name",
]

_TERMINAL = {"DONE", "FAILED", "CANCELLED", "INTERNAL_ERROR", "DELETED"}


def model_listing(model: ModelPublic) -> dict[str, Any]:
    """One SHOW MODELS row; ``aliases`` maps the system aliases too (DEFAULT, FIRST, LAST), as Snowflake's."""
    aliases: dict[str, str] = {}
    if model.default_version_name is not None:
        aliases["DEFAULT"] = model.default_version_name
    if model.versions:
        # ``versions`` is in creation order, which is what FIRST and LAST follow.
        aliases["FIRST"], aliases["LAST"] = model.versions[0], model.versions[-1]
    aliases.update(sorted(model.aliases.items()))
    return {
        "created_on": model.created_on,
        "name": model.name,
        "model_type": model.model_type,
        "database_name": model.database_name,
        "schema_name": model.schema_name,
        "comment": model.comment,
        "owner": model.owner,
        "default_version_name": model.default_version_name,
        "versions": json.dumps(model.versions),
        "aliases": json.dumps(aliases),
    }


def version_listing(version: ModelVersionPublic) -> dict[str, Any]:
    """One SHOW VERSIONS IN MODEL row: Snowflake's columns, then the ones its client reads from model_spec."""
    env = version.spec.get("env") or {}
    task = version.spec.get("task", "UNKNOWN")
    return {
        "created_on": version.created_on,
        "name": version.name,
        "aliases": json.dumps(version.aliases),
        "comment": version.comment,
        "database_name": version.database_name,
        "schema_name": version.schema_name,
        "model_name": version.model_name,
        "is_default_version": version.is_default_version,
        "functions": json.dumps([f.name for f in version.functions]),
        "metadata": json.dumps({"metrics": version.metrics}),
        "user_data": "{}",
        "model_type": version.model_type,
        "task": task,
        "python_version": env.get("python_version"),
        "pip_requirements": json.dumps(env.get("pip_requirements") or []),
        "conda_dependencies": json.dumps(env.get("conda_dependencies") or []),
        "cuda_version": env.get("cuda_version"),
        "model_spec": json.dumps(version.spec, default=str),
        "model_attributes": json.dumps({"framework": version.model_type, "task": task, "client": "runbatch"}),
        # Where its functions can run: the CPU runtime always, the GPU one where cuda_version was given.
        "runnable_in": json.dumps(["CPU", "GPU"] if env.get("cuda_version") else ["CPU"]),
        "inference_services": "[]",
    }


def job_service_listing(job: JobPublic) -> dict[str, Any]:
    """One SHOW JOB SERVICES row for a batch job: a job service of ``replicas`` instances."""
    running = job.status in ("RUNNING", "CANCELLING")
    stamps = [t for t in (job.created_at, job.input_ready_at, job.started_at, job.finished_at) if t]
    spec = json.dumps(job.spec, sort_keys=True, default=str)
    return {
        "name": job.name,
        "status": job.status,
        "database_name": job.database_name,
        "schema_name": job.schema_name,
        "owner": job.owner,
        "compute_pool": job.compute_pool,
        "dns_name": None,
        "current_instances": job.replicas if running else 0,
        "target_instances": job.replicas,
        "min_ready_instances": job.replicas,
        "min_instances": job.replicas,
        "max_instances": job.replicas,
        "auto_resume": False,
        "external_access_integrations": None,
        "created_on": job.created_at,
        # list_jobs reads a finished job's completion time from updated_on, as Snowflake's fallback does.
        "updated_on": job.finished_at if job.status in _TERMINAL and job.finished_at else max(stamps),
        "resumed_on": job.started_at,
        "suspended_on": None,
        "auto_suspend_secs": 0,
        "comment": None,
        "owner_role_type": "ROLE",
        "query_warehouse": None,
        "is_job": True,
        "is_async_job": True,
        "spec_digest": hashlib.sha256(spec.encode()).hexdigest(),
        "is_upgrading": False,
        "managing_object_domain": None,
        "managing_object_name": None,
    }
