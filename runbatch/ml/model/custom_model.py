"""Mirror of ``snowflake.ml.model.custom_model``: CustomModel, ModelContext, ModelRef, decorators."""

from __future__ import annotations

import datetime
import inspect
import typing
import warnings
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import anyio.to_thread
import pandas as pd

__all__ = [
    "CustomModel",
    "MethodRef",
    "ModelContext",
    "ModelRef",
    "inference_api",
    "partitioned_api",
    "partitioned_inference_api",
]

F = TypeVar("F", bound=Callable[..., Any])


class MethodRef:
    def __init__(self, model_ref: ModelRef, method_name: str) -> None:
        self._func = getattr(model_ref.model, method_name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._func(*args, **kwargs)

    async def async_run(self, *args: Any, **kwargs: Any) -> Any:
        if inspect.iscoroutinefunction(self._func):
            return await self._func(*args, **kwargs)
        return await anyio.to_thread.run_sync(lambda: self._func(*args, **kwargs))


class ModelRef:
    """A sub-model of a custom model; attribute access proxies to the wrapped model's methods."""

    def __init__(self, name: str, model: Any) -> None:
        self._name = name
        self._model = model

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> Any:
        return self._model

    def __getattr__(self, method_name: str) -> Any:
        if method_name.startswith("__") or "_model" not in self.__dict__:
            raise AttributeError(method_name)
        if hasattr(self._model, method_name):
            return MethodRef(self, method_name)
        raise AttributeError(f"Method {method_name} not found in model {self._name}.")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not callable(self._model):
            raise TypeError("Model is not callable.")
        return MethodRef(self, "__call__")(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        # Sub-models are saved by their own handler; the pickled ref keeps only the name.
        state = dict(self.__dict__)
        state.pop("_model", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class ModelContext:
    """Artifacts (file paths) and sub-models a custom model uses, addressed by name."""

    def __init__(
        self,
        *,
        artifacts: dict[str, str] | str | Any | None = None,
        models: dict[str, Any] | str | Any | None = None,
        **kwargs: Any,
    ) -> None:
        self.artifacts: dict[str, str] = {}
        self.model_refs: dict[str, ModelRef] = {}
        if isinstance(artifacts, dict):
            self.artifacts = artifacts
        elif isinstance(artifacts, str):
            self.artifacts["artifacts"] = artifacts
        elif artifacts is not None:
            self.model_refs["artifacts"] = ModelRef("artifacts", artifacts)
        if isinstance(models, dict):
            self.model_refs = {k: ModelRef(k, v) for k, v in models.items()}
        elif isinstance(models, str):
            self.artifacts["models"] = models
        elif models is not None:
            self.model_refs["models"] = ModelRef("models", models)
        for key, value in kwargs.items():
            if isinstance(value, str):
                if key in self.artifacts:
                    raise ValueError(f"Duplicate artifact name: {key}")
                self.artifacts[key] = value
            else:
                if key in self.model_refs:
                    raise ValueError(f"Duplicate model name: {key}")
                self.model_refs[key] = ModelRef(key, value)

    def path(self, key: str) -> str:
        return self.artifacts[key]

    def model_ref(self, name: str) -> ModelRef:
        return self.model_refs[name]

    def __getitem__(self, key: str) -> str | ModelRef:
        combined: dict[str, str | ModelRef] = {**self.artifacts, **self.model_refs}
        if key not in combined:
            raise KeyError(
                f"Key {key} not found in the kwargs, current available keys are: {combined.keys()}"
            )
        return combined[key]


def inference_api(func: F) -> F:
    func._is_inference_api = True  # type: ignore[attr-defined]
    return func


def partitioned_api(func: F) -> F:
    func._is_inference_api = True  # type: ignore[attr-defined]
    func._is_partitioned_api = True  # type: ignore[attr-defined]
    return func


def partitioned_inference_api(func: F) -> F:
    warnings.warn(
        "snowflake.ml.custom_model.partitioned_inference_api is deprecated and will be removed in a future release. "
        "Use snowflake.ml.custom_model.partitioned_api instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    return partitioned_api(func)


_SUPPORTED_PARAM_TYPES = (int, float, str, bool, bytes, datetime.datetime, dict)


def _supported_annotation(annotation: Any) -> bool:
    if annotation in _SUPPORTED_PARAM_TYPES:
        return True
    if typing.get_origin(annotation) is list:
        args = typing.get_args(annotation)
        return len(args) == 1 and _supported_annotation(args[0])
    return False


_FRAME_NAMES = frozenset({"pd.DataFrame", "pandas.DataFrame", "DataFrame"})


def _is_frame(annotation: Any) -> bool:
    # A string annotation stays unresolved when the class was pickled by value without its imports.
    return annotation is pd.DataFrame or annotation in _FRAME_NAMES


def _hints(func: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(func)
    except Exception:
        return {}


def _validate_method(func: Callable[..., Any], allows_kwargs: bool) -> None:
    if not callable(func):
        raise TypeError("Predict method is not callable.")
    params = list(inspect.signature(func).parameters.values())
    if len(params) < 2:
        raise TypeError("Predict method should have at least 2 arguments.")
    sig = inspect.signature(func)
    if params[1].annotation is inspect.Parameter.empty or sig.return_annotation is inspect.Signature.empty:
        raise TypeError("Missing type annotation for predict method.")
    # Resolved hints, so modules using `from __future__ import annotations` work (Snowflake's check
    # compares the raw strings and rejects them).
    hints = _hints(func)
    if not _is_frame(hints.get(params[1].name, params[1].annotation)):
        raise TypeError("Input for predict method should have type pandas.DataFrame.")
    ret = hints.get("return", sig.return_annotation)
    if not (_is_frame(ret) or ret == Coroutine[Any, Any, pd.DataFrame]):
        raise TypeError("Output for predict method should have type pandas.DataFrame.")
    for p in params[2:]:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            if allows_kwargs:
                continue
            raise TypeError(
                "**kwargs is not supported on custom model inference methods. Use named keyword-only parameters "
                "instead: def predict(self, df, *, param: type = default)"
            )
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"Parameter '{p.name}' must be keyword-only (defined after '*' in signature).")
        if p.default is inspect.Parameter.empty:
            raise TypeError(f"Parameter '{p.name}' must have a default value.")
        if p.annotation is inspect.Parameter.empty:
            raise TypeError(f"Parameter '{p.name}' must have a type annotation.")
        annotation = hints.get(p.name, p.annotation)
        if not _supported_annotation(annotation):
            raise TypeError(
                f"Parameter '{p.name}' has unsupported type annotation '{annotation}'. Supported types are: int, "
                "float, str, bool, bytes, datetime.datetime, dict, and list with element type (e.g., list[str], "
                "list[list[int]]). Note: bare 'list' without element type is not supported."
            )


class CustomModel:
    """Base class of user-defined models. Inference methods carry ``@inference_api``."""

    _allows_kwargs = False

    def __init__(self, context: ModelContext | None = None) -> None:
        self.context = context if context is not None else ModelContext()
        for method in self._get_infer_methods():
            _validate_method(method, self._allows_kwargs)

    def _get_infer_methods(self) -> Iterator[Callable[..., Any]]:
        for name in dir(self):
            attr = getattr(self, name, None)
            if getattr(attr, "_is_inference_api", False):
                if not inspect.ismethod(attr):
                    raise TypeError("A non-method inference API function is not supported.")
                yield attr.__func__

    def _get_partitioned_methods(self) -> list[str]:
        names = []
        for name in dir(self):
            attr = getattr(self, name, None)
            if getattr(attr, "_is_partitioned_api", False):
                if not inspect.ismethod(attr):
                    raise TypeError("A non-method inference API function is not supported.")
                names.append(name)
        return names

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(value, "_is_inference_api", False):
            if not inspect.ismethod(value):
                raise TypeError("A non-method inference API function is not supported.")
            _validate_method(value.__func__, self._allows_kwargs)
        super().__setattr__(name, value)
