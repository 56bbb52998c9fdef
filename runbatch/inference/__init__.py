"""Calling a packaged model's functions on batches: used by the runtime and by ``mv.run``."""

from runbatch.inference.function import LoadedModel, ModelFunction

__all__ = ["LoadedModel", "ModelFunction"]
