"""Mirror of ``snowflake.ml.model.model_signature``."""

from runbatch.ml.model._signatures.core import (
    BaseFeatureSpec,
    BaseParamSpec,
    DataType,
    FeatureGroupSpec,
    FeatureSpec,
    ModelSignature,
    ParamGroupSpec,
    ParamSpec,
)
from runbatch.ml.model._signatures.infer import infer_signature

__all__ = [
    "BaseFeatureSpec",
    "BaseParamSpec",
    "DataType",
    "FeatureGroupSpec",
    "FeatureSpec",
    "ModelSignature",
    "ParamGroupSpec",
    "ParamSpec",
    "infer_signature",
]

# The seeds import `model_signature.core` (`core.ModelSignature`, `core.FeatureSpec`, ...).
from runbatch.ml.model._signatures import core  # noqa: E402,F401
