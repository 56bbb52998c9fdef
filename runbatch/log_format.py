"""How runbatch processes write their logs: text lines, or one JSON object per line for log collectors.

A log call about a job or shard names them with ``extra=log_context(job=..., shard=...)``; the JSON
formatter writes those ids as fields, so a collector can select every line of one job.
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["CONTEXT_KEYS", "TEXT_FORMAT", "JsonFormatter", "LogFormat", "configure_logging", "log_context"]

LogFormat = Literal["text", "json"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Only these attributes of a record are written besides the message: anything else a library puts
# into ``extra`` (a request with its Authorization header, say) never reaches the log.
CONTEXT_KEYS = ("job", "job_name", "shard", "shard_index", "attempt", "worker")


def log_context(
    *,
    job: uuid.UUID | str | None = None,
    job_name: str | None = None,
    shard: uuid.UUID | str | None = None,
    shard_index: int | None = None,
    attempt: int | None = None,
    worker: str | None = None,
) -> dict[str, Any]:
    """The ``extra`` of a log call about a job or shard (ids as strings; absent ones left out)."""
    given: dict[str, Any] = {
        "job": None if job is None else str(job),
        "job_name": job_name,
        "shard": None if shard is None else str(shard),
        "shard_index": shard_index,
        "attempt": attempt,
        "worker": worker,
    }
    return {key: value for key, value in given.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: timestamp (UTC, ISO 8601), level, logger, message, then job/shard ids."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_KEYS:
            value = record.__dict__.get(key)
            if value is not None:
                entry[key] = value if isinstance(value, int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str, log_format: LogFormat) -> None:
    """Send every record of the process to stderr in ``log_format`` (replacing earlier handlers)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # A warning printed as a bare stderr line would break a collector's one-object-per-line parsing.
    logging.captureWarnings(log_format == "json")
