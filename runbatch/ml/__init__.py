"""Mirror of ``snowflake.ml``: registry, models, batch inference and jobs."""
