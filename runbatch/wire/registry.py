"""Models, versions and functions on the wire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

__all__ = ["FunctionPublic", "ModelPublic", "ModelUpdate", "ModelVersionPublic", "VersionUpdate"]


class FunctionPublic(BaseModel):
    name: str
    target_method: str
    target_method_function_type: str
    signature: dict[str, Any]
    is_partitioned: bool


class ModelVersionPublic(BaseModel):
    database_name: str
    schema_name: str
    model_name: str
    name: str
    comment: str | None
    owner: str
    created_on: datetime
    model_type: str
    is_default_version: bool
    aliases: list[str]
    functions: list[FunctionPublic]
    metrics: dict[str, Any]
    spec: dict[str, Any]


class ModelPublic(BaseModel):
    database_name: str
    schema_name: str
    name: str
    comment: str | None
    owner: str
    created_on: datetime
    model_type: str | None
    default_version_name: str | None
    versions: list[str]
    aliases: dict[str, str]
    tags: dict[str, str]


class ModelUpdate(BaseModel):
    comment: str | None = None
    default_version: str | None = None


class VersionUpdate(BaseModel):
    comment: str | None = None
