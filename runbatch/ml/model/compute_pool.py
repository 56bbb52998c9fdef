"""Mirror of ``snowflake.ml.model.compute_pool``: the pools every installation has."""

DEFAULT_CPU_COMPUTE_POOL = "SYSTEM_COMPUTE_POOL_CPU"
DEFAULT_GPU_COMPUTE_POOL = "SYSTEM_COMPUTE_POOL_GPU"
