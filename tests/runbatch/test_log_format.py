"""JSON log lines: one object per record, with the job and shard ids a log call names, and nothing else."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import uuid

from runbatch.log_format import JsonFormatter, log_context

JOB = uuid.UUID("0b7c2f4e-1d1e-4c57-9a59-3f1f2a0b6c11")
SHARD = uuid.UUID("5d0e8d8a-8a43-4d0c-8c0b-2f7f5c6a9e22")


def _record(message: str, *args: object, **fields: object) -> logging.LogRecord:
    return logging.makeLogRecord(
        {
            "name": "runbatch.worker",
            "levelno": logging.WARNING,
            "levelname": "WARNING",
            "msg": message,
            "args": args,
            "created": 1_795_000_000.25,
            **fields,
        }
    )


def test_a_log_call_with_extra_writes_its_ids() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.json_logs")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("job %s ended", "J", extra=log_context(job=JOB, job_name="J"))
    finally:
        logger.removeHandler(handler)
    entry = json.loads(stream.getvalue())
    assert (entry["logger"], entry["level"], entry["message"], entry["job"], entry["job_name"]) == (
        "tests.json_logs",
        "WARNING",
        "job J ended",
        str(JOB),
        "J",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["timestamp"])


def test_a_record_is_one_json_object_with_its_ids() -> None:
    context = log_context(job=JOB, job_name="J", shard=SHARD, shard_index=1, attempt=2)
    line = JsonFormatter().format(_record("shard %s of job %s\nlost", 1, "J", **context))
    assert "\n" not in line
    assert json.loads(line) == {
        "timestamp": "2026-11-18T11:06:40.250Z",
        "level": "WARNING",
        "logger": "runbatch.worker",
        "message": "shard 1 of job J\nlost",
        "job": str(JOB),
        "job_name": "J",
        "shard": str(SHARD),
        "shard_index": 1,
        "attempt": 2,
    }


def test_only_known_context_is_written() -> None:
    # Whatever else a library attaches to a record (here a token) stays out of the log.
    line = JsonFormatter().format(_record("hello", token="rbt_secret", headers={"a": 1}))
    assert json.loads(line) == {
        "timestamp": "2026-11-18T11:06:40.250Z",
        "level": "WARNING",
        "logger": "runbatch.worker",
        "message": "hello",
    }


def test_an_exception_is_a_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = _record("failed", exc_info=sys.exc_info(), **log_context(job=JOB))
    entry = json.loads(JsonFormatter().format(record))
    assert entry["job"] == str(JOB)
    assert entry["exception"].startswith("Traceback (most recent call last):")
    assert entry["exception"].endswith("ValueError: boom")


def test_log_context_leaves_out_what_is_unknown() -> None:
    assert log_context() == {}
    assert log_context(job=JOB, attempt=0) == {"job": str(JOB), "attempt": 0}
