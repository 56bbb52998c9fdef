"""Model: a named model and its versions, as ``snowflake.ml.model.Model``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from runbatch.errors import NotFoundError
from runbatch.identifiers import complete_name, parse_qualified_name, qualified, resolve_identifier
from runbatch.ml.model._model_version import ModelVersion
from runbatch.snowpark._connection import Connection
from runbatch.wire.listings import VERSION_COLUMNS, version_listing
from runbatch.wire.registry import ModelPublic, ModelVersionPublic

if TYPE_CHECKING:
    from runbatch.snowpark.session import Session

__all__ = ["Model", "show_versions_frame"]


class Model:
    _session: Session
    _database: str
    _schema: str
    _name: str

    def __init__(self) -> None:
        raise RuntimeError(
            "Model's initializer is not meant to be used. Use `get_model` from registry instead."
        )

    @classmethod
    def _ref(cls, session: Session, database: str, schema: str, name: str) -> Model:
        m = object.__new__(cls)
        m._session, m._database, m._schema, m._name = session, database, schema, name
        return m

    @property
    def _conn(self) -> Connection:
        return self._session._conn

    def _info(self) -> ModelPublic:
        return self._conn.client.get_model(self._database, self._schema, self._name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and (self._database, self._schema, self._name) == (
            other._database,
            other._schema,
            other._name,
        )

    def __hash__(self) -> int:
        return hash((self._database, self._schema, self._name))

    def __repr__(self) -> str:
        return f"Model(\n  name='{self.name}',\n  database_name='{qualified(self._database)}',\n  schema_name='{qualified(self._schema)}',\n)"

    @property
    def name(self) -> str:
        return qualified(self._name)

    @property
    def fully_qualified_name(self) -> str:
        return qualified(self._database, self._schema, self._name)

    @property
    def comment(self) -> str:
        return self._info().comment or ""

    @comment.setter
    def comment(self, value: str) -> None:
        self._conn.client.update_model(self._database, self._schema, self._name, comment=value)

    description = comment

    @property
    def default(self) -> ModelVersion:
        return self.version("DEFAULT")

    @default.setter
    def default(self, version: str | ModelVersion) -> None:
        name = version._info.name if isinstance(version, ModelVersion) else resolve_identifier(version)
        self._conn.client.update_model(self._database, self._schema, self._name, default_version=name)

    def version(self, version_or_alias: str) -> ModelVersion:
        ident = resolve_identifier(version_or_alias)
        try:
            info = self._conn.client.get_version(self._database, self._schema, self._name, ident)
        except NotFoundError:
            raise NotFoundError(
                f"Unable to find version or alias with name {qualified(ident)} in model {self.fully_qualified_name}"
            ) from None
        return ModelVersion._ref(self._session, info)

    def first(self) -> ModelVersion:
        return self.version("FIRST")

    def last(self) -> ModelVersion:
        return self.version("LAST")

    def versions(self) -> list[ModelVersion]:
        return [
            ModelVersion._ref(self._session, v)
            for v in self._conn.client.list_versions(self._database, self._schema, self._name)
        ]

    def show_versions(self) -> pd.DataFrame:
        return show_versions_frame([v._info for v in self.versions()])

    def delete_version(self, version_name: str) -> None:
        self._conn.client.delete_version(
            self._database, self._schema, self._name, resolve_identifier(version_name)
        )

    def _tag_name(self, tag_name: str) -> str:
        db, sch, name = complete_name(parse_qualified_name(tag_name), self._database, self._schema)
        assert db is not None and sch is not None
        return qualified(db, sch, name)

    def show_tags(self) -> dict[str, str]:
        return dict(self._info().tags)

    def get_tag(self, tag_name: str) -> str | None:
        return self._info().tags.get(self._tag_name(tag_name))

    def set_tag(self, tag_name: str, tag_value: str) -> None:
        self._conn.client.set_tag(
            self._database, self._schema, self._name, self._tag_name(tag_name), str(tag_value)
        )

    def unset_tag(self, tag_name: str) -> None:
        self._conn.client.unset_tag(self._database, self._schema, self._name, self._tag_name(tag_name))


def show_versions_frame(versions: list[ModelVersionPublic]) -> pd.DataFrame:
    """SHOW VERSIONS IN MODEL rows, as pandas (the rows the SQL statement returns)."""
    return pd.DataFrame([version_listing(v) for v in versions], columns=VERSION_COLUMNS)
