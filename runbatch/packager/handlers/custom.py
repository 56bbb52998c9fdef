"""CustomModel subclasses: the class and its context are pickled; artifacts and sub-models saved beside.

As in Snowflake, the instance itself is not pickled: loading calls the class again with a
context whose artifact paths point into the version folder and whose sub-models are loaded
by their own handlers, so ``__init__(context)`` must rebuild everything the model needs.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import typing
from pathlib import Path
from typing import Any

import cloudpickle
import pandas as pd

from runbatch.ml.model._signatures.core import DataType, ParamSpec
from runbatch.ml.model.custom_model import CustomModel, ModelContext
from runbatch.packager.handlers.base import (
    BASE_OPTIONS,
    InferFn,
    SaveRequest,
    as_frame,
    infer_method_signatures,
    pickled_by_value,
)
from runbatch.packager.meta import BlobMeta, ModelMeta

__all__ = ["CustomHandler"]


def _keyword_params(func: Any) -> list[ParamSpec]:
    specs = []
    try:
        hints = typing.get_type_hints(func)
    except Exception:
        hints = {}
    for p in list(inspect.signature(func).parameters.values())[2:]:
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        annotation = hints.get(p.name, p.annotation)
        depth = 0
        while typing.get_origin(annotation) is list:
            depth += 1
            (annotation,) = typing.get_args(annotation)
        dtype = DataType.from_python_type(annotation)
        specs.append(ParamSpec(p.name, dtype, p.default, shape=tuple([-1] * depth) if depth else None))
    return specs


def _run(result: Any) -> Any:
    return asyncio.run(result) if inspect.iscoroutine(result) else result


class CustomHandler:
    handler_type = "custom"
    allowed_options = BASE_OPTIONS | {"cuda_version"}

    def can_handle(self, model: Any) -> bool:
        return isinstance(model, CustomModel)

    def save(self, model: CustomModel, model_dir: Path, meta: ModelMeta, request: SaveRequest) -> BlobMeta:
        from runbatch.packager.handlers import find_handler

        if request.options.get("enable_explainability"):
            raise NotImplementedError("Explainability is not supported for custom model.")
        methods = {f.__name__: f for f in model._get_infer_methods()}
        partitioned = set(model._get_partitioned_methods())
        properties = {m: {"PARTITIONED": m in partitioned} for m in methods}
        if not request.is_sub_model:
            for m in meta.signatures:
                if not callable(getattr(model, m, None)):
                    raise ValueError(f"Target method {m} is not callable or does not exist in the model.")
            infer_method_signatures(
                meta,
                list(methods),
                request.sample_input_data,
                lambda m, data: _run(methods[m](model, as_frame(data))),
            )
            for m, sig in list(meta.signatures.items()):
                if not sig.params and m in methods:
                    params = _keyword_params(methods[m])
                    if params:
                        meta.signatures[m] = type(sig)(sig.inputs, sig.outputs, params)
            meta.function_properties.update({m: p for m, p in properties.items() if m in meta.signatures})
        blob_dir = model_dir / "models" / request.name
        (blob_dir / "artifacts").mkdir(parents=True, exist_ok=True)
        artifacts: dict[str, str] = {}
        for key, src in model.context.artifacts.items():
            source = Path(src)
            if not source.exists():
                raise FileNotFoundError(f"Artifact {key!r} points to {src}, which does not exist.")
            target = blob_dir / "artifacts" / source.name
            if source.is_dir():
                shutil.copytree(
                    source, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__")
                )
            else:
                shutil.copy2(source, target)
            artifacts[key] = f"artifacts/{source.name}"
        for sub_name, ref in model.context.model_refs.items():
            try:
                handler = find_handler(ref.model)
            except TypeError:
                raise TypeError(
                    f"Model {sub_name} in model context is not a supported model type. See "
                    "https://docs.snowflake.com/en/developer-guide/snowflake-ml/model-registry/bring-your-own-model-types "
                    "for more details."
                ) from None
            sub_request = SaveRequest(
                name=sub_name, sample_input_data=None, options=request.options, is_sub_model=True
            )
            meta.models[sub_name] = handler.save(ref.model, model_dir, meta, sub_request)
        with pickled_by_value(model), open(blob_dir / "model.pkl", "wb") as f:
            cloudpickle.dump((type(model), model.context), f)
        if request.options.get("cuda_version"):
            meta.cuda_version = str(request.options["cuda_version"])
        meta.pip_requirements.append(f"cloudpickle=={cloudpickle.__version__}")
        return BlobMeta(
            name=request.name,
            model_type=self.handler_type,
            path="model.pkl",
            function_properties=properties,
            artifacts=artifacts,
        )

    def load(self, model_dir: Path, meta: ModelMeta, blob: BlobMeta) -> Any:
        from runbatch.packager.handlers import handler_for_type

        with open(model_dir / "models" / blob.name / blob.path, "rb") as f:
            model_class, old_context = cloudpickle.load(f)
        artifacts = {k: str(model_dir / "models" / blob.name / rel) for k, rel in blob.artifacts.items()}
        sub_models = {}
        for sub_name in old_context.model_refs:
            sub_blob = meta.models[sub_name]
            sub_models[sub_name] = handler_for_type(sub_blob.model_type).load(model_dir, meta, sub_blob)
        return model_class(ModelContext(artifacts=artifacts, models=sub_models))

    def inference_functions(self, model: CustomModel, meta: ModelMeta) -> dict[str, InferFn]:
        def make(method: str) -> InferFn:
            fn = getattr(model, method)

            def call(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
                result = _run(fn(df, **params))
                if not isinstance(result, pd.DataFrame):
                    raise TypeError(
                        f"Method {method} of the custom model returned {type(result).__name__}; it must return a "
                        "pandas DataFrame."
                    )
                return result

            return call

        return {m: make(m) for m in meta.signatures}
