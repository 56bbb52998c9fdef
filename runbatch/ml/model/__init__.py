"""Mirror of ``snowflake.ml.model``.

Names resolve lazily: the wire schemas import ``runbatch.ml.model.batch`` and must not pull in
the SDK classes (which import the client, which imports the wire schemas).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runbatch.ml.model._model import Model
    from runbatch.ml.model._model_version import ExportMode, ModelVersion
    from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec
    from runbatch.ml.model.target_platform import TargetPlatform
    from runbatch.ml.model.task import Task

__all__ = [
    "ExportMode",
    "InputSpec",
    "JobSpec",
    "Model",
    "ModelVersion",
    "OutputSpec",
    "TargetPlatform",
    "Task",
]

_WHERE = {
    "ExportMode": "runbatch.ml.model._model_version",
    "InputSpec": "runbatch.ml.model.batch",
    "JobSpec": "runbatch.ml.model.batch",
    "Model": "runbatch.ml.model._model",
    "ModelVersion": "runbatch.ml.model._model_version",
    "OutputSpec": "runbatch.ml.model.batch",
    "TargetPlatform": "runbatch.ml.model.target_platform",
    "Task": "runbatch.ml.model.task",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'runbatch.ml.model' has no attribute {name!r}")
