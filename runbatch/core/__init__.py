"""Mirror of ``snowflake.core`` as far as task graphs need it: ``Root``, ``CreateMode`` and the
``schema`` handle ``runbatch.core.task.dagv1.DAGOperation`` takes."""

from runbatch.core._common import CreateMode
from runbatch.core._root import (
    DatabaseCollection,
    DatabaseResource,
    Root,
    SchemaCollection,
    SchemaResource,
    TaskCollection,
    TaskResource,
)

__all__ = [
    "CreateMode",
    "DatabaseCollection",
    "DatabaseResource",
    "Root",
    "SchemaCollection",
    "SchemaResource",
    "TaskCollection",
    "TaskResource",
]
