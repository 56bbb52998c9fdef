"""Model handlers, one per framework. ``find_handler`` picks the first that accepts an object."""

from __future__ import annotations

from typing import Any

from runbatch.packager.handlers.base import ModelHandler
from runbatch.packager.handlers.custom import CustomHandler
from runbatch.packager.handlers.sklearn import SklearnHandler

__all__ = ["HANDLERS", "ModelHandler", "find_handler", "handler_for_type"]

HANDLERS: tuple[ModelHandler, ...] = (SklearnHandler(), CustomHandler())


def find_handler(model: Any) -> ModelHandler:
    for handler in HANDLERS:
        if handler.can_handle(model):
            return handler
    raise TypeError(f"(2114) {type(model)} is not supported.")


def handler_for_type(model_type: str) -> ModelHandler:
    for handler in HANDLERS:
        if handler.handler_type == model_type:
            return handler
    raise ValueError(f"This runbatch build has no handler for model type {model_type!r}.")
