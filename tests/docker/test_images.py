"""Runtime images: content-hash tags, the non-root entrypoint, per-model environments."""

from __future__ import annotations

import time
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from worker.images import RUNTIME_REPOSITORY

# The first test of a run may wait for the runtime image to be built (a few minutes on a new machine).
pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parents[2]


def test_the_cpu_image_runs_the_runtime_as_a_user(docker_client: Any, images: Any, cpu_image: str) -> None:
    assert cpu_image.startswith(f"{RUNTIME_REPOSITORY}:cpu-")
    started = time.monotonic()
    assert images.runtime_image("cpu") == cpu_image  # same content, same tag, nothing built
    assert time.monotonic() - started < 30
    config = docker_client.images.get(cpu_image).attrs["Config"]
    assert (config["User"], config["Entrypoint"]) == ("runbatch", ["python", "-m", "runbatch.runtime"])
    installed = images.installed(cpu_image)
    for name in ("torch", "transformers", "scikit-learn", "xgboost", "lightgbm", "sentence-transformers"):
        assert name in installed, name
    assert installed["torch"] == metadata.version("torch")  # the host's (CPU) build, not PyPI's CUDA one


def test_model_environments_add_only_what_is_missing(images: Any, cpu_image: str) -> None:
    torch_pin = f"torch=={metadata.version('torch').split('+')[0]}"
    assert images.missing(cpu_image, [torch_pin, "numpy>=1.26", "iniconfig==2.0.0"]) == ["iniconfig==2.0.0"]
    assert images.model_image(cpu_image, [torch_pin, "numpy>=1.26"]) == cpu_image
    assert images.model_image(cpu_image, []) == cpu_image
    derived = images.model_image(
        cpu_image, [torch_pin], ["conda-forge::iniconfig=2.0.0"], repository="Team/Env"
    )
    assert derived.startswith("team/env:")
    assert images.installed(derived)["iniconfig"] == "2.0.0"
    assert images.installed(derived)["torch"] == images.installed(cpu_image)["torch"]
    assert (
        images.model_image(cpu_image, [torch_pin], ["conda-forge::iniconfig=2.0.0"], repository="Team/Env")
        == derived
    )


def test_the_gpu_dockerfile_has_the_same_contract() -> None:
    text = (ROOT / "runtime_images" / "gpu" / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert lines[0] == "ARG BASE_IMAGE=python:3.11-slim-bookworm" and lines[1] == "FROM ${BASE_IMAGE}"
    assert 'pip install "/tmp/context/src[runtime,gpu,' in text
    assert lines[-3:] == [
        "USER runbatch",
        "WORKDIR /home/runbatch",
        'ENTRYPOINT ["python", "-m", "runbatch.runtime"]',
    ]
