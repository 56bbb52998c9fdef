"""The connection behind a Session: an HTTP client plus the current database and schema."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import pyarrow as pa

from runbatch.client import ControlPlaneClient
from runbatch.errors import InvalidArgumentError
from runbatch.identifiers import complete_name, parse_qualified_name, qualified, resolve_identifier
from runbatch.stage.paths import StagePath, parse_stage_path
from runbatch.wire.resources import SqlResult

__all__ = ["Connection", "connect"]


def _embedded_starter() -> Callable[[Path], tuple[str, str]]:
    found = [ep for ep in entry_points(group="runbatch.control_plane") if ep.name == "embedded"]
    if not found:
        raise InvalidArgumentError(
            "No runbatch server URL was given and the embedded control plane is not installed. Install it with "
            "pip install 'runbatch[server]', or connect to a server with "
            'Session.builder.configs({"url": ..., "token": ...}).create().'
        )
    starter: Callable[[Path], tuple[str, str]] = found[0].load()
    return starter


class Connection:
    def __init__(
        self, client: ControlPlaneClient, *, home: Path | None, database: str | None, schema: str | None
    ) -> None:
        self.client = client
        self.home = home
        self.database = database
        self.schema = schema

    @property
    def embedded(self) -> bool:
        return self.home is not None

    def sql(self, text: str) -> SqlResult:
        result = self.client.sql(text, database=self.database, schema=self.schema)
        self.database, self.schema = result.database, result.schema_
        return result

    def query(self, text: str) -> pa.RecordBatchReader:
        return self.client.query(text, database=self.database, schema=self.schema)

    def table_name(self, name: str | Iterable[str]) -> tuple[str, str, str]:
        """``[db.][schema.]table`` (or its parts) completed with the current database and schema."""
        parts = parse_qualified_name(name) if isinstance(name, str) else [resolve_identifier(p) for p in name]
        if not 1 <= len(parts) <= 3:
            raise InvalidArgumentError(f"{name!r} is not a table name of the form [database.][schema.]table.")
        db, sch, table = complete_name(parts, self.database, self.schema)
        if db is None or sch is None:
            raise InvalidArgumentError(
                f"Cannot resolve the table {qualified(*parts)}: there is no current "
                f"{'database' if db is None else 'schema'}. Qualify it (DB.SCHEMA.TABLE) or call "
                "session.use_database / use_schema first."
            )
        return db, sch, table

    def stage_path(self, text: str) -> StagePath:
        return parse_stage_path(text, database=self.database, schema=self.schema)

    def close(self) -> None:
        self.client.close()


def connect(options: dict[str, Any]) -> Connection:
    """Connect to ``url`` (or RUNBATCH_API_URL), else start the embedded control plane under ``home``."""
    url = options.get("url") or os.environ.get("RUNBATCH_API_URL")
    token = options.get("token") or os.environ.get("RUNBATCH_TOKEN")
    home: Path | None = None
    if not url:
        home = Path(options.get("home") or os.environ.get("RUNBATCH_HOME") or Path.home() / ".runbatch")
        url, token = _embedded_starter()(home)
    if not token:
        raise InvalidArgumentError(
            f"No token for {url}: pass {{'token': ...}} in the session configs or set RUNBATCH_TOKEN. A new "
            "server's admin token is in $RUNBATCH_HOME/token on its host."
        )
    database = options.get("database")
    schema = options.get("schema")
    return Connection(
        ControlPlaneClient(str(url), str(token)),
        home=home,
        database=resolve_identifier(database) if database else None,
        schema=resolve_identifier(schema) if schema else None,
    )
