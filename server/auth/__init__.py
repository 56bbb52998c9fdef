"""Bearer tokens: API tokens for people and workers, per-attempt tokens for runtimes."""
