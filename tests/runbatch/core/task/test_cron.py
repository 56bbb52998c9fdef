"""Cron schedules: Snowflake's five fields, names, steps, L, time zones and daylight-saving jumps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from runbatch.core.task import Cron
from runbatch.core.task.cron import CronSchedule
from runbatch.errors import InvalidArgumentError


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


def _firings(expr: str, tz: str, start: datetime, n: int) -> list[datetime]:
    schedule = CronSchedule.parse(expr, tz)
    out: list[datetime] = []
    t = start
    for _ in range(n):
        nxt = schedule.next_after(t)
        assert nxt is not None
        out.append(nxt)
        t = nxt
    return out


def test_cron_is_snowflakes_named_tuple() -> None:
    cron = Cron("0 0 10-20 * TUE,THU", "America/Los_Angeles")
    assert (cron.expr, cron.timezone) == ("0 0 10-20 * TUE,THU", "America/Los_Angeles")
    assert tuple(cron) == ("0 0 10-20 * TUE,THU", "America/Los_Angeles")


def test_every_hour_on_the_hour() -> None:
    assert _firings("0 * * * *", "UTC", _utc(2026, 1, 1, 10, 0), 3) == [
        _utc(2026, 1, 1, 11),
        _utc(2026, 1, 1, 12),
        _utc(2026, 1, 1, 13),
    ]


def test_next_is_strictly_after() -> None:
    schedule = CronSchedule.parse("*/15 * * * *", "UTC")
    assert schedule.next_after(_utc(2026, 1, 1, 10, 15)) == _utc(2026, 1, 1, 10, 30)
    assert schedule.next_after(_utc(2026, 1, 1, 10, 14, 59)) == _utc(2026, 1, 1, 10, 15)


def test_day_of_month_or_day_of_week_in_local_time() -> None:
    # Snowflake's own example: midnight in Los Angeles on the 10th-20th OR on Tuesdays and Thursdays.
    got = _firings("0 0 10-20 * TUE,THU", "America/Los_Angeles", _utc(2026, 3, 1), 5)
    assert got == [
        _utc(2026, 3, 3, 8),  # Tue Mar 3, 00:00 PST
        _utc(2026, 3, 5, 8),  # Thu Mar 5
        _utc(2026, 3, 10, 7),  # Tue Mar 10, 00:00 PDT (after the jump on Mar 8)
        _utc(2026, 3, 11, 7),
        _utc(2026, 3, 12, 7),
    ]


def test_start_and_step_month_names_and_last() -> None:
    # 4/3 in the month field: April, July, October.
    assert _firings("0 0 1 4/3 *", "UTC", _utc(2026, 1, 1), 4) == [
        _utc(2026, 4, 1),
        _utc(2026, 7, 1),
        _utc(2026, 10, 1),
        _utc(2027, 4, 1),
    ]
    assert _firings("30 6 L FEB *", "UTC", _utc(2027, 1, 1), 2) == [
        _utc(2027, 2, 28, 6, 30),
        _utc(2028, 2, 29, 6, 30),
    ]
    assert _firings("0 9 * * 5L", "UTC", _utc(2026, 1, 1), 2) == [_utc(2026, 1, 30, 9), _utc(2026, 2, 27, 9)]
    assert _firings("0 12 * * 7", "UTC", _utc(2026, 1, 1), 1) == [_utc(2026, 1, 4, 12)]  # 7 is Sunday


def test_daylight_saving_jumps_fire_once() -> None:
    # 02:30 does not exist on 2026-03-08 in Los Angeles: it runs at 03:30 PDT, once.
    assert _firings("30 2 * * *", "America/Los_Angeles", _utc(2026, 3, 7), 3) == [
        _utc(2026, 3, 7, 10, 30),
        _utc(2026, 3, 8, 10, 30),
        _utc(2026, 3, 9, 9, 30),
    ]
    # 01:30 happens twice on 2026-11-01: it runs at the first one only.
    assert _firings("30 1 * * *", "America/Los_Angeles", _utc(2026, 10, 31, 12), 2) == [
        _utc(2026, 11, 1, 8, 30),
        _utc(2026, 11, 2, 9, 30),
    ]


def test_latest_at_or_before() -> None:
    schedule = CronSchedule.parse("0 */6 * * *", "UTC")
    assert schedule.latest_at_or_before(_utc(2026, 5, 1, 17, 59)) == _utc(2026, 5, 1, 12)
    assert schedule.latest_at_or_before(_utc(2026, 5, 1, 18)) == _utc(2026, 5, 1, 18)


@pytest.mark.parametrize(
    ("expr", "reason"),
    [
        ("* * * *", "it has 4 fields"),
        ("60 * * * *", "60 is outside 0-59 in the minute field"),
        ("x * * * *", "'x' is not a value of the minute field"),
        ("0 0 * * L", "'L' alone is not a day of week"),
        ("0 0 30 2 *", "it never matches a date"),
        ("*/0 * * * *", "'0' is not a positive step in the minute field"),
        ("0 20-10 * * *", "the range '20-10' of the hour field runs backwards"),
    ],
)
def test_bad_expressions_say_why(expr: str, reason: str) -> None:
    with pytest.raises(InvalidArgumentError) as err:
        CronSchedule.parse(expr, "UTC")
    assert err.value.message.startswith(f"Invalid cron expression {expr!r}: {reason}")


def test_unknown_time_zone() -> None:
    with pytest.raises(InvalidArgumentError, match="Unknown time zone 'Mars/Olympus'"):
        CronSchedule.parse("0 * * * *", "Mars/Olympus")
