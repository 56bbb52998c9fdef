"""Workers: registration, liveness, and whether a pool can run a job."""
