"""Intervals of monitors: ``refresh_interval`` (how often) and ``aggregation_window`` (metric windows)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from runbatch.errors import InvalidArgumentError

__all__ = ["EPOCH", "aggregation_window", "canonical_window", "refresh_interval", "window_starts"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_INTERVAL = re.compile(r"^\s*(\d+)\s*([a-z]+?)s?\s*$", re.IGNORECASE)
_REFRESH_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def _parse(text: str) -> tuple[int, str] | None:
    match = _INTERVAL.match(text or "")
    if match is None:
        return None
    return int(match.group(1)), match.group(2).lower()


def refresh_interval(text: str) -> timedelta:
    """Snowflake's target lag: '<num> { seconds | minutes | hours | days }'."""
    parsed = _parse(text)
    if parsed is None or parsed[1] not in _REFRESH_UNITS or parsed[0] <= 0:
        raise InvalidArgumentError(
            f"Invalid refresh_interval {text!r}: use '<num> seconds', '<num> minutes', '<num> hours' or "
            "'<num> days' (for example '1 hour')."
        )
    return timedelta(seconds=parsed[0] * _REFRESH_UNITS[parsed[1]])


def aggregation_window(text: str) -> timedelta:
    """Snowflake aggregates over whole days: '<num> day(s)'."""
    parsed = _parse(text)
    if parsed is None or parsed[1] != "day" or parsed[0] <= 0:
        raise InvalidArgumentError(
            f"Invalid aggregation_window {text!r}: model monitors aggregate over days; use '<num> days' "
            "(for example '1 day')."
        )
    return timedelta(days=parsed[0])


def canonical_window(text: str) -> str:
    """'1 day', '1 DAYS' and ' 1 Day ' are the same granularity: '1 DAY'."""
    parsed = _parse(text)
    if parsed is None:
        return text.strip().upper()
    return f"{parsed[0]} {parsed[1].upper()}"


def window_starts(timestamps: pd.Series, width: timedelta) -> pd.Series:
    """The start (UTC) of the aggregation window each timestamp falls in, counted from the epoch."""
    values = pd.to_datetime(timestamps)
    if values.dt.tz is None:
        values = values.dt.tz_localize(UTC)
    else:
        values = values.dt.tz_convert(UTC)
    nanos = (values - pd.Timestamp(EPOCH)).to_numpy(dtype="timedelta64[ns]").astype(np.int64)
    step = int(width / timedelta(microseconds=1)) * 1000
    floored = (nanos // step) * step
    return pd.Series(pd.to_datetime(floored, utc=True), index=timestamps.index)
