"""Every setting of every process is documented in the README (datasette's test_settings_are_documented)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic_settings import BaseSettings

from runbatch.runtime.settings import RuntimeSettings
from server.settings import ServerSettings
from worker.settings import WorkerSettings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("settings", [ServerSettings, WorkerSettings, RuntimeSettings])
def test_settings_are_documented(settings: type[BaseSettings]) -> None:
    for name, field in settings.model_fields.items():
        assert field.description, f"{settings.__name__}.{name} has no description"
        assert f"`RUNBATCH_{name.upper()}`" in README, f"RUNBATCH_{name.upper()} is missing from the README"


def test_sql_reference_names_real_tests() -> None:
    """docs/sql.md names a test for every statement and method; each must exist."""
    text = (ROOT / "docs" / "sql.md").read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", text)
    assert len(cited) >= 30
    for path, name in cited:
        tree = ast.parse((ROOT / path).read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in names, f"docs/sql.md cites {path}::{name}, which does not exist"
