"""Model packaging: a model object <-> an immutable version folder (MANIFEST.yml + model/)."""

from runbatch.packager.meta import ModelMeta
from runbatch.packager.package import load_model, save_model

__all__ = ["ModelMeta", "load_model", "save_model"]
