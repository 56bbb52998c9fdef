"""Workers: claim shards, start runtimes (processes or containers), watch them, report."""
