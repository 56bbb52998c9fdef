"""``Root(session).databases[db].schemas[schema]``, as in ``snowflake.core``: the handle
``DAGOperation`` takes. Resources are names only; nothing is fetched until an operation runs.

``schema.tasks[dag_name]`` reaches a DAG's root task: ``resume()``, ``suspend()``,
``execute()`` and ``drop()``, as Snowflake's ``TaskResource`` does for a root task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runbatch.errors import UnsupportedError
from runbatch.identifiers import qualified, resolve_identifier

if TYPE_CHECKING:
    from runbatch.client import ControlPlaneClient
    from runbatch.snowpark.session import Session

__all__ = [
    "DatabaseCollection",
    "DatabaseResource",
    "Root",
    "SchemaCollection",
    "SchemaResource",
    "TaskCollection",
    "TaskResource",
]


class Root:
    """The entry point of the object API, bound to a session."""

    def __init__(self, session: Session) -> None:
        self._session = session

    @property
    def session(self) -> Session:
        return self._session

    @property
    def databases(self) -> DatabaseCollection:
        return DatabaseCollection(self)

    @property
    def _client(self) -> ControlPlaneClient:
        return self._session._conn.client


class DatabaseCollection:
    def __init__(self, root: Root) -> None:
        self.root = root

    def __getitem__(self, name: str) -> DatabaseResource:
        return DatabaseResource(resolve_identifier(name), self.root)


class DatabaseResource:
    def __init__(self, name: str, root: Root) -> None:
        self.name = name
        self.root = root

    @property
    def schemas(self) -> SchemaCollection:
        return SchemaCollection(self)

    def __repr__(self) -> str:
        return f"<DatabaseResource: {qualified(self.name)}>"


class SchemaCollection:
    def __init__(self, database: DatabaseResource) -> None:
        self.database = database

    def __getitem__(self, name: str) -> SchemaResource:
        return SchemaResource(resolve_identifier(name), self.database)


class SchemaResource:
    def __init__(self, name: str, database: DatabaseResource) -> None:
        self.name = name
        self.database = database

    @property
    def root(self) -> Root:
        return self.database.root

    @property
    def qualified_name(self) -> str:
        return qualified(self.database.name, self.name)

    @property
    def tasks(self) -> TaskCollection:
        return TaskCollection(self)

    def __repr__(self) -> str:
        return f"<SchemaResource: {self.qualified_name}>"


class TaskCollection:
    def __init__(self, schema: SchemaResource) -> None:
        self.schema = schema

    def __getitem__(self, name: str) -> TaskResource:
        resolved = resolve_identifier(name)
        if "$" in resolved:
            raise UnsupportedError(
                f"{name} is a child task of a DAG; runbatch manages child tasks through their DAG "
                "(runbatch.core.task.dagv1.DAGOperation). Use the DAG's name here."
            )
        return TaskResource(resolved, self)


class TaskResource:
    """A DAG's root task."""

    def __init__(self, name: str, collection: TaskCollection) -> None:
        self.name = name
        self.collection = collection

    def _key(self) -> tuple[str, str, str]:
        schema = self.collection.schema
        return schema.database.name, schema.name, self.name

    def resume(self) -> None:
        self.collection.schema.root._client.resume_dag(*self._key())

    def suspend(self) -> None:
        self.collection.schema.root._client.suspend_dag(*self._key())

    def execute(self, *, retry_last: bool = False) -> None:
        if retry_last:
            raise UnsupportedError(
                "execute(retry_last=True) is not supported yet; execute() runs the whole DAG."
            )
        self.collection.schema.root._client.execute_dag(*self._key())

    def drop(self, if_exists: bool = False) -> None:
        self.collection.schema.root._client.drop_dag(*self._key(), if_exists=if_exists)

    def __repr__(self) -> str:
        return f"<TaskResource: {qualified(*self._key())}>"
