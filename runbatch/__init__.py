"""runbatch: self-hosted batch inference with Snowflake's Model Registry and run_batch API.

The public API lives under ``runbatch.ml`` and ``runbatch.snowpark`` (mirrors of
``snowflake.ml`` and ``snowflake.snowpark``) and ``runbatch.errors``.
"""

__version__ = "0.1.0"
