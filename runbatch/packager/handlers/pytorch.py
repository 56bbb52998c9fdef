"""torch.nn.Module models (not ScriptModules), saved whole with torch.save and cloudpickle.

Inputs reach ``forward`` as tensors: the whole input frame as one tensor, or with the
``multiple_inputs`` option one tensor per input feature passed as ``forward(*tensors)``.
Signature parameters are passed to the method as keyword arguments, as in Snowflake.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cloudpickle
import pandas as pd

from runbatch.ml.model._signatures.core import ModelSignature
from runbatch.ml.model._signatures.validate import rename_pandas_df
from runbatch.packager.handlers.base import (
    BASE_OPTIONS,
    DEFAULT_CUDA_VERSION,
    InferFn,
    SaveRequest,
    as_frame,
    infer_method_signatures,
    pickled_by_value,
    target_methods,
)
from runbatch.packager.handlers.tensors import (
    frame_to_tensor,
    frame_to_tensors,
    is_tensor,
    is_tensor_sequence,
    outputs_to_frame,
    to_local,
)
from runbatch.packager.meta import BlobMeta, ModelMeta

if TYPE_CHECKING:
    import torch

__all__ = ["PyTorchHandler", "torch_requirement"]

DEFAULT_TARGET_METHODS = ("forward",)

HANDLER_VERSION = "2025-03-01"
MODEL_FILE = "model.pt"


def _is_instance(model: Any, module_name: str, *attrs: str) -> bool:
    """isinstance against ``module_name.attr...`` only when that module is already imported."""
    obj: Any = sys.modules.get(module_name)
    for attr in attrs:
        obj = getattr(obj, attr, None)
    return isinstance(obj, type) and isinstance(model, obj)


class PyTorchHandler:
    handler_type = "pytorch"
    allowed_options = BASE_OPTIONS | {"target_methods", "cuda_version", "multiple_inputs", "use_gpu"}
    model_kind = "PyTorch"

    def can_handle(self, model: Any) -> bool:
        return (
            _is_instance(model, "torch", "nn", "Module")
            and not _is_instance(model, "torch", "jit", "ScriptModule")
            and not _is_instance(model, "sentence_transformers", "SentenceTransformer")
            and not _is_instance(model, "keras", "Model")
        )

    # -- the parts the TorchScript handler replaces ---------------------------------------------
    def _write(self, model: Any, path: Path) -> None:
        import torch

        with pickled_by_value(model), open(path, "wb") as f:
            torch.save(model, f, pickle_module=cloudpickle)

    def _read(self, path: Path) -> Any:
        import torch

        with open(path, "rb") as f:
            return torch.load(f, map_location="cpu", weights_only=False)

    def _requirements(self) -> list[str]:
        return [torch_requirement(), f"cloudpickle=={cloudpickle.__version__}"]

    def _keyword_filter(self, model: Any, method: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
        return lambda params: params

    # -- the handler protocol ---------------------------------------------------------------------
    def save(self, model: Any, model_dir: Path, meta: ModelMeta, request: SaveRequest) -> BlobMeta:
        if request.options.get("enable_explainability"):
            raise NotImplementedError(f"Explainability is not supported for {self.model_kind} model.")
        multiple_inputs = bool(request.options.get("multiple_inputs", False))
        if not request.is_sub_model:
            methods = target_methods(model, request.options.get("target_methods"), DEFAULT_TARGET_METHODS)
            if meta.signatures:
                target_methods(model, list(meta.signatures), ())
            sample = request.sample_input_data
            infer_method_signatures(
                meta, methods, to_local(sample), _sample_predictor(model, sample, multiple_inputs)
            )
        blob_dir = model_dir / "models" / request.name
        blob_dir.mkdir(parents=True, exist_ok=True)
        self._write(model, blob_dir / MODEL_FILE)
        meta.pip_requirements.extend(self._requirements())
        meta.cuda_version = str(request.options.get("cuda_version", DEFAULT_CUDA_VERSION))
        return BlobMeta(
            name=request.name,
            model_type=self.handler_type,
            path=MODEL_FILE,
            handler_version=HANDLER_VERSION,
            options={"multiple_inputs": multiple_inputs},
        )

    def load(self, model_dir: Path, meta: ModelMeta, blob: BlobMeta) -> Any:
        # On the CPU, as Snowflake's ModelVersion.load() without use_gpu; inference_functions moves it.
        return self._read(model_dir / "models" / blob.name / blob.path)

    def inference_functions(self, model: Any, meta: ModelMeta) -> dict[str, InferFn]:
        import torch

        multiple_inputs = bool(meta.models[meta.name].options.get("multiple_inputs", False))
        device = torch.device("cuda" if meta.cuda_version and torch.cuda.is_available() else "cpu")
        model.to(device)
        model.eval()
        return {
            method: _infer_fn(
                getattr(model, method), sig, multiple_inputs, device, self._keyword_filter(model, method)
            )
            for method, sig in meta.signatures.items()
        }


def torch_requirement() -> str:
    import torch

    # The installed version without its local label ("+cpu"), as Snowflake pins it.
    return f"torch=={torch.__version__.split('+')[0]}"


def _sample_predictor(model: Any, sample: Any, multiple_inputs: bool) -> Callable[[str, Any], Any]:
    """Calls a method on (truncated) sample data in its numpy form, as Snowflake's save does.

    Tensors given as the sample go in unchanged (``to_local`` turned them into arrays only for
    signature inference); any other sample goes through a DataFrame in its own types.
    """
    import torch

    def predict(method: str, local: Any) -> Any:
        inputs: Any
        if multiple_inputs:
            if is_tensor_sequence(sample):
                inputs = [torch.from_numpy(a) for a in local]
            else:
                inputs = frame_to_tensors(as_frame(local))
        else:
            inputs = torch.from_numpy(local) if is_tensor(sample) else frame_to_tensor(as_frame(local))
        model.eval()
        fn = getattr(model, method)
        with torch.no_grad():
            if multiple_inputs:
                result = fn(*inputs)
                if not isinstance(result, tuple):
                    result = [result]
            else:
                result = fn(inputs)
        return to_local(result)

    return predict


def _infer_fn(
    fn: Any,
    signature: ModelSignature,
    multiple_inputs: bool,
    device: torch.device,
    keywords: Callable[[dict[str, Any]], dict[str, Any]],
) -> InferFn:
    import torch

    def call(df: pd.DataFrame, params: dict[str, Any]) -> pd.DataFrame:
        if df.isnull().to_numpy().any():
            raise ValueError("Tensor cannot handle null values.")
        kwargs = keywords(params)
        with torch.no_grad():
            if multiple_inputs:
                tensors = [t.to(device) for t in frame_to_tensors(df, signature.inputs)]
                result = fn(*tensors, **kwargs)
                if not isinstance(result, tuple):
                    result = [result]
            else:
                result = fn(frame_to_tensor(df, signature.inputs).to(device), **kwargs)
        return rename_pandas_df(outputs_to_frame(result), signature.outputs)

    return call
