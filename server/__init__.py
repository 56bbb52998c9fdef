"""The runbatch control plane: REST API, metadata, job orchestration. See README.md here."""
