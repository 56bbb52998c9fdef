"""Model handlers, one per framework. ``find_handler`` picks the first that accepts an object.

Handler modules import their framework only when called, and ``can_handle`` first checks
whether the framework is imported at all: logging a scikit-learn model never imports torch.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import Any

from runbatch.packager.handlers.base import ModelHandler

__all__ = ["HANDLER_CLASSES", "ModelHandler", "all_handlers", "find_handler", "handler_for_type"]

# Order matters where types overlap: SentenceTransformer and ScriptModule are nn.Modules,
# XGBoost and LightGBM estimators are scikit-learn BaseEstimators.
HANDLER_CLASSES: tuple[tuple[str, str], ...] = (
    ("runbatch.packager.handlers.xgboost", "XGBoostHandler"),
    ("runbatch.packager.handlers.lightgbm", "LightGBMHandler"),
    ("runbatch.packager.handlers.sklearn", "SklearnHandler"),
    ("runbatch.packager.handlers.sentence_transformers", "SentenceTransformersHandler"),
    ("runbatch.packager.handlers.huggingface_pipeline", "HuggingFacePipelineHandler"),
    ("runbatch.packager.handlers.torchscript", "TorchScriptHandler"),
    ("runbatch.packager.handlers.pytorch", "PyTorchHandler"),
    ("runbatch.packager.handlers.custom", "CustomHandler"),
)


@cache
def all_handlers() -> tuple[ModelHandler, ...]:
    handlers = []
    for module_name, class_name in HANDLER_CLASSES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a handler not (yet) part of this build
        handlers.append(getattr(module, class_name)())
    return tuple(handlers)


def find_handler(model: Any) -> ModelHandler:
    for handler in all_handlers():
        if handler.can_handle(model):
            return handler
    raise TypeError(f"(2114) {type(model)} is not supported.")


def handler_for_type(model_type: str) -> ModelHandler:
    for handler in all_handlers():
        if handler.handler_type == model_type:
            return handler
    raise ValueError(f"This runbatch build has no handler for model type {model_type!r}.")
