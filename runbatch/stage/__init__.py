"""Stages: named locations ``@[db.][schema.]stage/path`` and the storage roots behind them."""

from runbatch.stage.paths import StagePath, normalize_key, parse_stage_path
from runbatch.stage.storage import FileEntry, LocalStorage, Storage, StorageConfig, open_storage

__all__ = [
    "FileEntry",
    "LocalStorage",
    "StagePath",
    "Storage",
    "StorageConfig",
    "normalize_key",
    "open_storage",
    "parse_stage_path",
]
