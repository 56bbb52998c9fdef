"""save_model / load_model: the version folder layout shared with Snowflake's packager.

MANIFEST.yml                      functions (SQL names, types), runtime
model/model.yaml                  ModelMeta
model/env/requirements.txt        pinned requirements
model/env/conda.yml
model/models/<NAME>/model.pkl     the model (and artifacts/, sub-models beside it)
model/code/...                    code_paths, first on sys.path when loading
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from packaging.requirements import Requirement
from packaging.version import Version

from runbatch.identifiers import resolve_identifier
from runbatch.ml.model._signatures.core import FeatureGroupSpec, FeatureSpec, ModelSignature, ParamSpec
from runbatch.ml.model._signatures.validate import validate_pandas_df
from runbatch.packager.explain import check_explainability_supported
from runbatch.packager.handlers import find_handler, handler_for_type
from runbatch.packager.handlers.base import SaveRequest, as_frame
from runbatch.packager.meta import ModelMeta

__all__ = ["load_model", "relax_requirement", "repackage", "save_model"]

_METHOD_OPTION_KEYS = frozenset({"case_sensitive", "function_type", "max_batch_size", "volatility"})


def _check_options(handler_options: frozenset[str], options: dict[str, Any]) -> None:
    unknown = set(options) - handler_options
    if unknown:
        raise ValueError(
            f"(2110) model save: unrecognized option keys for this model type: {', '.join(sorted(unknown))}. "
            "Check spelling and supported keys for the framework you are logging."
        )
    method_options = options.get("method_options")
    if method_options is None:
        return
    if not isinstance(method_options, dict):
        raise TypeError(
            "(2110) model save: method_options must be a dictionary mapping method names to their option dictionaries."
        )
    for name, opts in method_options.items():
        if not isinstance(opts, dict):
            raise TypeError(
                "(2110) model save: each method_options value must be a dictionary of options for that method."
            )
        bad = set(opts) - _METHOD_OPTION_KEYS
        if bad:
            raise ValueError(
                "(2110) model save: unrecognized method_options keys for one or more methods "
                f"(method {name!r}): {', '.join(sorted(bad))}. Supported per-method keys are case_sensitive, "
                "function_type, max_batch_size, volatility."
            )


def save_model(
    model: Any,
    target_dir: Path,
    *,
    name: str,
    signatures: dict[str, ModelSignature] | None = None,
    sample_input_data: Any = None,
    options: dict[str, Any] | None = None,
    pip_requirements: Sequence[str] | None = None,
    conda_dependencies: Sequence[str] | None = None,
    python_version: str | None = None,
    task: str = "UNKNOWN",
    code_paths: Sequence[str] | None = None,
) -> ModelMeta:
    """Package ``model`` into ``target_dir`` (which must be empty) and return its metadata."""
    options = dict(options or {})
    handler = find_handler(model)
    _check_options(handler.allowed_options, options)
    check_explainability_supported(handler.handler_type, options)
    meta = ModelMeta(name=name, model_type=handler.handler_type, signatures=dict(signatures or {}), task=task)
    meta.method_options = dict(options.get("method_options") or {})
    if options.get("function_type"):
        meta.options["function_type"] = options["function_type"]
    if python_version:
        parts = python_version.split(".")
        meta.python_version = ".".join(parts[:2])
    model_dir = target_dir / "model"
    model_dir.mkdir(parents=True, exist_ok=True)
    meta.models[name] = handler.save(
        model, model_dir, meta, SaveRequest(name=name, sample_input_data=sample_input_data, options=options)
    )
    if signatures and sample_input_data is not None:
        sample = as_frame(sample_input_data).head(100)
        for sig in signatures.values():
            validate_pandas_df(sample, sig.inputs)
    for method in meta.signatures:
        ftype = meta.function_type(method)
        if ftype not in ("FUNCTION", "TABLE_FUNCTION"):
            raise NotImplementedError(f"Function type {ftype} is not supported.")
        if meta.is_partitioned(method) and ftype != "TABLE_FUNCTION":
            raise ValueError("(2112) Partitioned inference api functions must have type TABLE_FUNCTION.")
    meta.pip_requirements = sorted(set(meta.pip_requirements) | set(pip_requirements or []))
    meta.conda_dependencies = sorted(conda_dependencies or [])
    if options.get("relax_version"):
        meta.pip_requirements = sorted(relax_requirement(r) for r in meta.pip_requirements)
        meta.conda_dependencies = sorted(relax_requirement(r) for r in meta.conda_dependencies)
    _copy_code_paths(model_dir, code_paths or [])
    _write_env(model_dir, meta)
    meta.write(model_dir)
    (target_dir / "MANIFEST.yml").write_text(yaml.safe_dump(_manifest(meta), sort_keys=False))
    return meta


def relax_requirement(text: str) -> str:
    """``pkg==x.y.z`` as ``pkg<x+1,>=x.y`` (Snowflake's relax_version); other specifiers stay.

    Requirements run in the image's own environment here (as in SPCS), so pins are exact
    unless ``relax_version=True`` asks for this.
    """
    channel, sep, rest = text.rpartition("::")
    req = Requirement(rest)
    specs = []
    for spec in req.specifier:
        if spec.operator == "==" and "*" not in spec.version:
            version = Version(spec.version)
            specs += [f"<{version.major + 1}", f">={version.major}.{version.minor}"]
        else:
            specs.append(str(spec))
    extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
    marker = f"; {req.marker}" if req.marker else ""
    return f"{channel}{sep}{req.name}{extras}{','.join(sorted(specs))}{marker}"


def _copy_code_paths(model_dir: Path, code_paths: Sequence[str]) -> None:
    code_dir = model_dir / "code"
    for raw in code_paths:
        src = Path(raw).resolve()
        if not src.exists():
            raise FileNotFoundError(f"Code path '{raw}' does not exist (resolved to {src}).")
        if src.name in ("runbatch", "runbatch.py", "snowflake", "snowflake.py"):
            raise ValueError(f"`{src.name}` is a reserved name and you cannot contain that into code path.")
        code_dir.mkdir(exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, code_dir / src.name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, code_dir / src.name)


def _write_env(model_dir: Path, meta: ModelMeta) -> None:
    env_dir = model_dir / "env"
    env_dir.mkdir(exist_ok=True)
    (env_dir / "requirements.txt").write_text("".join(f"{r}\n" for r in meta.pip_requirements))
    conda = {
        "name": "runbatch-env",
        "channels": ["conda-forge", "nodefaults"],
        "dependencies": [f"python=={meta.python_version}.*", *meta.conda_dependencies],
    }
    (env_dir / "conda.yml").write_text(yaml.safe_dump(conda, sort_keys=False))


def _sql_type(spec: Any) -> str:
    if isinstance(spec, FeatureGroupSpec) or spec.shape:
        return "ARRAY" if spec.shape else "OBJECT"
    return {
        "STRING": "TEXT",
        "BYTES": "BINARY",
        "BOOL": "BOOLEAN",
        "TIMESTAMP_NTZ": "TIMESTAMP_NTZ",
        "FLOAT": "FLOAT",
        "DOUBLE": "FLOAT",
        "OBJECT": "OBJECT",
    }.get(spec.dtype.name, "NUMBER")


def _manifest(meta: ModelMeta) -> dict[str, Any]:
    methods = []
    for method, sig in meta.signatures.items():
        case_sensitive = bool((meta.method_options.get(method) or {}).get("case_sensitive"))
        try:
            sql_name = method if case_sensitive else resolve_identifier(method)
        except ValueError:
            raise ValueError(
                f"Your target method {method} cannot be resolved as valid SQL identifier. Try specifying "
                "`case_sensitive` as True."
            ) from None
        ftype = meta.function_type(method)
        methods.append(
            {
                "name": sql_name,
                "runtime": "python_runtime",
                "type": ftype,
                "handler": f"functions.{method}.infer",
                "inputs": [{"name": f.name, "type": _sql_type(f)} for f in sig.inputs],
                "outputs": (
                    [{"type": "OBJECT"}]
                    if ftype == "FUNCTION"
                    else [{"name": f.name, "type": _sql_type(f)} for f in sig.outputs]
                ),
                "params": [
                    {
                        "name": p.name,
                        "type": _sql_type(p) if isinstance(p, FeatureSpec | ParamSpec) else "OBJECT",
                    }
                    for p in sig.params
                ],
            }
        )
    return {
        "manifest_version": "1.0",
        "runtimes": {
            "python_runtime": {
                "language": "PYTHON",
                "version": meta.python_version,
                "imports": ["model/"],
                "dependencies": {"pip": "model/env/requirements.txt"},
            }
        },
        "methods": methods,
    }


def repackage(exported: Path, target_dir: Path) -> ModelMeta:
    """Copy a folder that ``ModelVersion.export`` wrote (either mode) into ``target_dir`` as a version.

    The files are taken as they are, so the new version has the same model, signatures and
    environment; only ``MANIFEST.yml`` is written again (a MODEL-mode export has none).
    """
    model_dir = exported / "model" if (exported / "model" / "model.yaml").exists() else exported
    if not (model_dir / "model.yaml").is_file():
        raise ValueError(
            f"{exported} is not an exported model version: it has no model/model.yaml. Pass the folder that "
            "ModelVersion.export() wrote."
        )
    meta = ModelMeta.read(model_dir)
    shutil.copytree(model_dir, target_dir / "model", ignore=shutil.ignore_patterns("__pycache__"))
    (target_dir / "MANIFEST.yml").write_text(yaml.safe_dump(_manifest(meta), sort_keys=False))
    return meta


def load_model(version_dir: Path) -> tuple[Any, ModelMeta]:
    """Load the model object of a version folder (or of its ``model/`` subfolder)."""
    model_dir = version_dir / "model" if (version_dir / "model" / "model.yaml").exists() else version_dir
    meta = ModelMeta.read(model_dir)
    code_dir = model_dir / "code"
    if code_dir.is_dir() and str(code_dir) not in sys.path:
        sys.path.insert(0, str(code_dir))
    blob = meta.models[meta.name]
    return handler_for_type(blob.model_type).load(model_dir, meta, blob), meta
