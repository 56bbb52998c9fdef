"""Every setting of every process is documented in the README (datasette's test_settings_are_documented)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from runbatch.runtime.settings import RuntimeSettings
from server.settings import ServerSettings
from worker.settings import WorkerSettings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


@pytest.mark.parametrize("settings", [ServerSettings, WorkerSettings, RuntimeSettings])
def test_settings_are_documented(settings: type[BaseSettings]) -> None:
    for name, field in settings.model_fields.items():
        assert field.description, f"{settings.__name__}.{name} has no description"
        assert f"`RUNBATCH_{name.upper()}`" in README, f"RUNBATCH_{name.upper()} is missing from the README"
