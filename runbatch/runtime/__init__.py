"""The inference runtime: ``python -m runbatch.runtime`` processes one shard attempt and exits.

Exit codes: 0 done, 3 the model failed (already reported), 4 stopped on request.
Anything else is a crash the worker reports and the control plane retries.
"""

EXIT_OK = 0
EXIT_REPORTED_FAILURE = 3
EXIT_CANCELLED = 4
