"""Model services: an online inference server for a model version (``ModelVersion.create_service``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["INFERENCE_ENDPOINT", "ModelServiceCreate", "ModelServicePublic"]

# Snowflake's name for a model service's endpoint (SHOW ENDPOINTS IN SERVICE lists it).
INFERENCE_ENDPOINT = "inference"


class ModelServiceCreate(BaseModel):
    """``create_service``'s arguments; names are resolved (``DB``, ``PUBLIC``, ``MY_SERVICE``)."""

    model_config = ConfigDict(populate_by_name=True)

    database: str = Field(description="The service's database")
    schema_: str = Field(alias="schema", description="The service's schema")
    name: str = Field(min_length=1)
    compute_pool: str = Field(min_length=1)
    ingress_enabled: bool = False
    min_instances: int = Field(default=0, ge=0)
    max_instances: int = Field(default=1, ge=1)
    cpu_requests: str | None = None
    memory_requests: str | None = None
    gpu_requests: str | None = None
    num_workers: int | None = Field(default=None, ge=1)
    max_batch_rows: int | None = Field(default=None, ge=1)
    inference_engine_options: dict[str, Any] | None = None


class ModelServicePublic(BaseModel):
    """One row of ``ModelVersion.list_services()`` (Snowflake's columns), plus where to reach it."""

    name: str = Field(description="DB.SCHEMA.NAME")
    database_name: str
    schema_name: str
    service_name: str
    status: str
    message: str = ""
    inference_endpoint: str | None = Field(
        default=None, description="The authenticated ingress URL when ingress_enabled, once the service runs"
    )
    internal_endpoint: str | None = Field(default=None, description="http://host:port of the running server")
    autocapture_enabled: bool = False
    restarts: int = Field(default=0, description="How often the inference server was started again")
    functions: dict[str, str] = Field(default_factory=dict, description="Function name -> path on the server")
