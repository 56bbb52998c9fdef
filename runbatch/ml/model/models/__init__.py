"""Mirror of ``snowflake.ml.model.models``: models logged by reference (``huggingface.TransformersPipeline``)."""
