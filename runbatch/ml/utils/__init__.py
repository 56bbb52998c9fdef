"""Mirror of ``snowflake.ml.utils``."""
