"""Mirror of ``snowflake.ml.registry``."""

from runbatch.ml.registry._registry import Registry

__all__ = ["Registry"]
