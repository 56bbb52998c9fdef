"""Mirror of ``snowflake.ml.monitoring``: model monitors (ML Observability)."""
