"""Mirror of ``snowflake.ml.monitoring.entities``."""
