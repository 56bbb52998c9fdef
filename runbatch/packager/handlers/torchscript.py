"""torch.jit.ScriptModule models (scripted or traced), saved with torch.jit.save.

Everything but the file format and the keyword arguments is the PyTorch handler's: a
compiled method accepts only the keywords its schema declares, so other signature
parameters are dropped, as in Snowflake.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runbatch.packager.handlers.pytorch import PyTorchHandler, torch_requirement

__all__ = ["TorchScriptHandler"]


class TorchScriptHandler(PyTorchHandler):
    handler_type = "torchscript"
    model_kind = "Torch Script"

    def can_handle(self, model: Any) -> bool:
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(model, torch.jit.ScriptModule)

    def _write(self, model: Any, path: Path) -> None:
        import torch

        with open(path, "wb") as f:
            torch.jit.save(model, f)

    def _read(self, path: Path) -> Any:
        import torch

        with open(path, "rb") as f:
            return torch.jit.load(f, map_location="cpu")  # type: ignore[no-untyped-call]

    def _requirements(self) -> list[str]:
        return [torch_requirement()]

    def _keyword_filter(self, model: Any, method: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        accepted = {arg.name for arg in getattr(model, method).schema.arguments} - {"self"}
        return lambda params: {k: v for k, v in params.items() if k in accepted}
