"""model/model.yaml: what a packaged model is, how to load it and which functions it has."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from runbatch.ml.model._signatures.core import ModelSignature

__all__ = ["META_VERSION", "BlobMeta", "ModelMeta"]

META_VERSION = "2023-12-01"


@dataclass
class BlobMeta:
    """One saved model object under model/models/<name>/ (the main model or a sub-model)."""

    name: str
    model_type: str
    path: str
    handler_version: str = META_VERSION
    function_properties: dict[str, dict[str, bool]] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "model_type": self.model_type,
            "path": self.path,
            "handler_version": self.handler_version,
            "function_properties": self.function_properties,
            "artifacts": self.artifacts,
            "options": self.options,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BlobMeta:
        return cls(
            name=d["name"],
            model_type=d["model_type"],
            path=d["path"],
            handler_version=d.get("handler_version", META_VERSION),
            function_properties=d.get("function_properties") or {},
            artifacts=d.get("artifacts") or {},
            options=d.get("options") or {},
        )


@dataclass
class ModelMeta:
    name: str
    model_type: str
    signatures: dict[str, ModelSignature] = field(default_factory=dict)
    models: dict[str, BlobMeta] = field(default_factory=dict)
    function_properties: dict[str, dict[str, bool]] = field(default_factory=dict)
    method_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    python_version: str = field(default_factory=lambda: f"{sys.version_info.major}.{sys.version_info.minor}")
    cuda_version: str | None = None
    pip_requirements: list[str] = field(default_factory=list)
    conda_dependencies: list[str] = field(default_factory=list)
    task: str = "UNKNOWN"
    metadata: dict[str, Any] | None = None
    creation_timestamp: str = field(default_factory=lambda: str(datetime.now(UTC).replace(tzinfo=None)))
    # The model/ folder this was read from (not serialized): artifacts beside the model, such as
    # the explain function's background data, are found from it.
    source_dir: Path | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        runtimes: dict[str, Any] = {"cpu": {"dependencies": {"pip": "runtimes/cpu/env/requirements.txt"}}}
        if self.cuda_version:
            runtimes["gpu"] = {"dependencies": {"pip": "runtimes/gpu/env/requirements.txt"}}
        return {
            "name": self.name,
            "model_type": self.model_type,
            "version": META_VERSION,
            "creation_timestamp": self.creation_timestamp,
            "signatures": {m: s.to_dict() for m, s in self.signatures.items()},
            "models": {k: b.to_dict() for k, b in self.models.items()},
            "function_properties": self.function_properties,
            "method_options": self.method_options,
            "options": {k: v for k, v in self.options.items() if k in ("function_type",)},
            "env": {
                "pip": "env/requirements.txt",
                "conda": "env/conda.yml",
                "python_version": self.python_version,
                "cuda_version": self.cuda_version,
                "pip_requirements": sorted(self.pip_requirements),
                "conda_dependencies": sorted(self.conda_dependencies),
            },
            "runtimes": runtimes,
            "task": self.task,
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMeta:
        if not isinstance(d, dict):
            raise ValueError(f"Read ill-formatted model metadata, should be a dict, received {type(d)}")
        if "version" not in d:
            raise ValueError("Unable to get the version of the metadata file.")
        env = d.get("env") or {}
        return cls(
            name=d["name"],
            model_type=d["model_type"],
            signatures={m: ModelSignature.from_dict(s) for m, s in (d.get("signatures") or {}).items()},
            models={k: BlobMeta.from_dict(b) for k, b in (d.get("models") or {}).items()},
            function_properties=d.get("function_properties") or {},
            method_options=d.get("method_options") or {},
            options=d.get("options") or {},
            python_version=env.get("python_version", ""),
            cuda_version=env.get("cuda_version"),
            pip_requirements=list(env.get("pip_requirements") or []),
            conda_dependencies=list(env.get("conda_dependencies") or []),
            task=d.get("task", "UNKNOWN"),
            metadata=d.get("metadata"),
            creation_timestamp=d.get("creation_timestamp", ""),
        )

    def function_type(self, method: str) -> str:
        opts = self.method_options.get(method) or {}
        return str(opts.get("function_type") or self.options.get("function_type") or "FUNCTION")

    def is_partitioned(self, method: str) -> bool:
        return bool((self.function_properties.get(method) or {}).get("PARTITIONED", False))

    def write(self, model_dir: Path) -> None:
        (model_dir / "model.yaml").write_text(yaml.safe_dump(self.to_dict(), sort_keys=True))

    @classmethod
    def read(cls, model_dir: Path) -> ModelMeta:
        meta = cls.from_dict(yaml.safe_load((model_dir / "model.yaml").read_text()))
        meta.source_dir = model_dir
        return meta
