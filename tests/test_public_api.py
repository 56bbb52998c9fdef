"""The public surface: Snowflake's import paths exist, and each package's __all__ names what it exports."""

from __future__ import annotations

import importlib

import pytest

MODULES = [
    "runbatch.errors",
    "runbatch.snowpark",
    "runbatch.snowpark.functions",
    "runbatch.ml.registry",
    "runbatch.ml.model",
    "runbatch.ml.model.batch",
    "runbatch.ml.model.model_signature",
    "runbatch.ml.model.custom_model",
    "runbatch.ml.model.inference_engine",
    "runbatch.ml.jobs",
    "runbatch.ml.monitoring.entities.model_monitor_config",
    "runbatch.ml.monitoring.model_monitor",
]


@pytest.mark.parametrize("name", MODULES)
def test_all_is_honest(name: str) -> None:
    module = importlib.import_module(name)
    for member in module.__all__:
        assert getattr(module, member) is not None, f"{name}.{member}"


def test_snowflake_imports_port_by_prefix() -> None:
    from runbatch.ml.jobs import delete_job, get_job, list_jobs  # noqa: F401
    from runbatch.ml.model import custom_model  # noqa: F401
    from runbatch.ml.model.batch import InputSpec, JobSpec, OutputSpec, SaveMode  # noqa: F401
    from runbatch.ml.model.compute_pool import DEFAULT_CPU_COMPUTE_POOL
    from runbatch.ml.model.model_signature import core  # noqa: F401
    from runbatch.ml.registry import Registry  # noqa: F401
    from runbatch.snowpark import Session  # noqa: F401

    assert DEFAULT_CPU_COMPUTE_POOL == "SYSTEM_COMPUTE_POOL_CPU"
