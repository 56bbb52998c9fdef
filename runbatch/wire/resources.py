"""Databases, schemas, stages, stage files, compute pools and SQL statements on the wire."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr

from runbatch.wire.workers import WorkerPublic

__all__ = [
    "ComputePoolCreate",
    "ComputePoolPublic",
    "DatabaseCreate",
    "DatabasePublic",
    "SchemaCreate",
    "SchemaPublic",
    "SqlRequest",
    "SqlResult",
    "StageCreate",
    "StageCredentials",
    "StageFilePublic",
    "StagePublic",
    "TablePublic",
    "is_query",
]


class DatabaseCreate(BaseModel):
    name: str = Field(description="Resolved name (unquoted SQL names are upper case)")
    comment: str | None = None
    if_not_exists: bool = False
    or_replace: bool = False


class DatabasePublic(BaseModel):
    name: str
    comment: str | None
    owner: str
    created_on: datetime


class SchemaCreate(BaseModel):
    name: str
    comment: str | None = None
    if_not_exists: bool = False
    or_replace: bool = False


class SchemaPublic(BaseModel):
    database_name: str
    name: str
    comment: str | None
    owner: str
    created_on: datetime


class StageCredentials(BaseModel):
    """An external stage's S3 credentials: stored encrypted, never returned."""

    aws_key_id: str
    aws_secret_key: SecretStr
    aws_token: SecretStr | None = None


class StageCreate(BaseModel):
    name: str
    comment: str | None = None
    if_not_exists: bool = False
    or_replace: bool = False
    url: str | None = Field(
        default=None, description="External stage: s3://bucket/path (unset: internal stage)"
    )
    endpoint: str | None = Field(default=None, description="S3-compatible endpoint of an external stage")
    region: str | None = None
    credentials: StageCredentials | None = None


class StagePublic(BaseModel):
    database_name: str
    schema_name: str
    name: str
    comment: str | None
    owner: str
    created_on: datetime
    type: Literal["INTERNAL", "EXTERNAL"] = "INTERNAL"
    url: str | None = None
    endpoint: str | None = None
    region: str | None = None
    has_credentials: bool = False


class StageFilePublic(BaseModel):
    """One row of LIST: the name is ``<stage in lower case>/<path>`` (an external stage's file: its
    URL), as Snowflake prints it; ``path`` is the file's path from the stage root."""

    name: str
    size: int
    md5: str
    last_modified: str
    path: str = Field(description="Path from the stage root, for the file routes (not a LIST column)")


class TablePublic(BaseModel):
    """A table: Parquet data registered by name (``save_as_table``)."""

    name: str
    database_name: str
    schema_name: str
    rows: int
    bytes: int
    created_on: datetime
    owner: str


class ComputePoolCreate(BaseModel):
    name: str
    instance_family: str
    min_nodes: int = Field(default=1, ge=0)
    max_nodes: int = Field(default=1, ge=1)
    comment: str | None = None
    if_not_exists: bool = False


class ComputePoolPublic(BaseModel):
    name: str
    instance_family: str
    min_nodes: int
    max_nodes: int
    comment: str | None
    owner: str
    created_on: datetime
    state: str = Field(default="ACTIVE", description="ACTIVE with live workers, IDLE without")
    workers: list[WorkerPublic] = Field(default_factory=list, description="Live workers serving the pool")
    running_shards: int = 0


# A statement is a query when its first keyword (after comments and parentheses) is one of these.
_QUERY_START = re.compile(r"^(?:\s|--[^\n]*\n?|/\*.*?\*/|\()*(SELECT|WITH)\b", re.IGNORECASE | re.DOTALL)


def is_query(sql: str) -> bool:
    """Whether ``sql`` is a query, whose rows POST /sql streams as Arrow instead of a JSON ``SqlResult``."""
    return _QUERY_START.match(sql) is not None


class SqlRequest(BaseModel):
    sql: str
    database: str | None = Field(default=None, description="The session's current database (resolved)")
    schema_: str | None = Field(default=None, alias="schema", description="The session's current schema")

    model_config = {"populate_by_name": True}


class SqlResult(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    database: str | None = Field(default=None, description="Current database after the statement")
    schema_: str | None = Field(
        default=None, alias="schema", description="Current schema after the statement"
    )

    model_config = {"populate_by_name": True}
