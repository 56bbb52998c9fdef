"""Mirror of ``snowflake.ml.model.inference_engine``."""

from __future__ import annotations

import enum

__all__ = ["VLLM_SUPPORTED_TASKS", "InferenceEngine"]

VLLM_SUPPORTED_TASKS = ["text-generation", "image-text-to-text", "video-text-to-text", "audio-text-to-text"]


class InferenceEngine(enum.Enum):
    VLLM = "vllm"
    PYTHON_GENERIC = "python_generic"

    @classmethod
    def from_value(cls, value: InferenceEngine | str) -> InferenceEngine:
        supported = ", ".join(e.value for e in cls)
        if isinstance(value, cls):
            return value
        if not isinstance(value, str):
            raise ValueError(
                f"Unsupported inference engine type {type(value).__name__}. Supported engines: {supported}."
            )
        wanted = value.strip().lower()
        for engine in cls:
            if wanted in (engine.value, engine.name.lower()):
                return engine
        raise ValueError(f"Unsupported inference engine '{value}'. Supported engines: {supported}.")
