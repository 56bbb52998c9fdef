"""Mirror of ``snowflake.ml.model.models.huggingface``: a transformers pipeline logged by reference.

``TransformersPipeline(task=..., model=...)`` names a model instead of holding one; logging it
(``Registry.log_model``) builds the pipeline and saves it like any transformers pipeline. Here the
model comes from a local directory or from the Hugging Face cache, never from the hub: runbatch
runs offline (``HF_HUB_OFFLINE``), so a hub model must be in the cache first
(``huggingface-cli download <model>`` where the hub is reachable, or a copied cache).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["TransformersPipeline"]


class TransformersPipeline:
    """A transformers pipeline by task and model name (a hub id in the local cache, or a directory)."""

    def __init__(
        self,
        task: str | None = None,
        model: str | None = None,
        *,
        revision: str | None = None,
        token_or_secret: str | None = None,
        trust_remote_code: bool | None = None,
        model_kwargs: dict[str, Any] | None = None,
        compute_pool_for_log: str | None = None,
        allow_patterns: list[str] | str | None = None,
        ignore_patterns: list[str] | str | None = None,
        lazy_upload: bool = True,
        **kwargs: Any,
    ) -> None:
        if task is None:
            raise RuntimeError(
                "Impossible to instantiate a pipeline without a task being specified. "
                "Please provide a task name explicitly."
            )
        if model is None:
            raise RuntimeError(
                "Impossible to instantiate a pipeline without a model being specified. "
                "Please provide an identifier to a pretrained model."
            )
        if not isinstance(model, str):
            raise RuntimeError(
                f"Impossible to use non-string model as input for class {type(self).__name__}."
            )
        self.task = task
        self.model = model
        self.revision = revision
        self.token_or_secret = token_or_secret
        self.trust_remote_code = trust_remote_code
        self.model_kwargs = dict(model_kwargs or {})
        # Logging always happens here, in this process: there is no remote logging job to send it to.
        self.compute_pool_for_log = compute_pool_for_log
        self.allow_patterns = allow_patterns
        self.ignore_patterns = ignore_patterns
        self.lazy_upload = lazy_upload
        self.kwargs = kwargs
        self.repo_snapshot_dir = str(self._resolve())
        self.has_chat_template = _has_chat_template(Path(self.repo_snapshot_dir))

    def _resolve(self) -> Path:
        local = Path(self.model).expanduser()
        if local.is_dir():
            return local.resolve()
        from huggingface_hub import snapshot_download

        try:
            return Path(
                snapshot_download(
                    self.model,
                    revision=self.revision,
                    allow_patterns=self.allow_patterns,
                    ignore_patterns=self.ignore_patterns,
                    local_files_only=True,
                    # Read now, not when huggingface_hub was imported: a cache set later counts.
                    cache_dir=os.environ.get("HF_HUB_CACHE") or None,
                )
            )
        except Exception as exc:  # noqa: BLE001 - every cache miss reads the same to the user
            raise ValueError(
                f"Model {self.model!r} is neither a local directory nor in the Hugging Face cache "
                f"({type(exc).__name__}). runbatch does not download from the hub: run "
                f"`huggingface-cli download {self.model}` where the hub is reachable (or copy a cache, "
                "HF_HOME), or pass the model's directory."
            ) from None

    def pipeline(self) -> Any:
        """The transformers pipeline itself, built from the resolved files only."""
        import transformers

        build: Any = transformers.pipeline  # overloaded per task literal; the task here is any string
        return build(
            task=self.task,
            model=self.repo_snapshot_dir,
            trust_remote_code=bool(self.trust_remote_code),
            model_kwargs=self.model_kwargs or None,
            **self.kwargs,
        )


def _has_chat_template(folder: Path) -> bool:
    import json

    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    config = folder / "tokenizer_config.json"
    if not config.is_file():
        return False
    return bool(json.loads(config.read_text()).get("chat_template"))
