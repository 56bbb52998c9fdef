"""``Cron(expr, timezone)``, as ``snowflake.core.task.Cron``, and the schedule it describes.

The expression has Snowflake's five fields (minute, hour, day of month, month, day of week)
with ``*``, lists, ranges, ``/n`` steps, month and day names, ``L`` (the last day of the month
in the day-of-month field; ``5L``, the last Friday, in the day-of-week field). When both day
fields are restricted, a day matches either of them, as in cron. Times are wall-clock times
in ``timezone``: a time skipped by a daylight-saving jump runs at the same instant as the
hour after it (once), and a time repeated by the jump back runs at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from runbatch.errors import InvalidArgumentError

__all__ = ["Cron", "CronSchedule"]

_MONTHS = {name: i + 1 for i, name in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split())}
_WEEKDAYS = {name: i for i, name in enumerate("SUN MON TUE WED THU FRI SAT".split())}
# A schedule that matches nothing within this many days never matches (e.g. February 30th).
_HORIZON_DAYS = 366 * 8


class Cron(NamedTuple):
    """A cron expression and the IANA time zone its times are in, e.g. ``Cron("0 * * * *", "UTC")``."""

    expr: str
    timezone: str


@dataclass(frozen=True)
class _Field:
    values: frozenset[int]
    restricted: bool


def _invalid(expr: str, reason: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"Invalid cron expression {expr!r}: {reason}. The expression has five fields: minute (0-59), hour "
        "(0-23), day of month (1-31 or L), month (1-12 or JAN-DEC) and day of week (0-6 or SUN-SAT, or nL)."
    )


def _number(text: str, names: dict[str, int], low: int, high: int, expr: str, field: str) -> int:
    upper = text.upper()
    if upper in names:
        return names[upper]
    if not text.isdigit():
        raise _invalid(expr, f"{text!r} is not a value of the {field} field")
    value = int(text)
    if field == "day of week" and value == 7:
        value = 0  # 7 is Sunday too, as in most crons
    if not low <= value <= high:
        raise _invalid(expr, f"{value} is outside {low}-{high} in the {field} field")
    return value


def _field(text: str, low: int, high: int, names: dict[str, int], expr: str, field: str) -> _Field:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise _invalid(expr, f"the {field} field has an empty list item")
        base, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise _invalid(expr, f"{step_text!r} is not a positive step in the {field} field")
            step = int(step_text)
        if base in ("*", "?"):
            start, stop = low, high
        elif "-" in base:
            first, _, last = base.partition("-")
            start = _number(first, names, low, high, expr, field)
            stop = _number(last, names, low, high, expr, field)
            if stop < start:
                raise _invalid(expr, f"the range {base!r} of the {field} field runs backwards")
        else:
            start = _number(base, names, low, high, expr, field)
            # "4/3" is every third value starting at 4; a bare value is just itself.
            stop = high if step_text else start
        values.update(range(start, stop + 1, step))
    return _Field(frozenset(values), restricted=not text.startswith(("*", "?")))


@dataclass(frozen=True)
class CronSchedule:
    """A parsed ``Cron``: which UTC instants it fires at."""

    expr: str
    timezone: str
    zone: ZoneInfo
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: _Field
    last_day: bool
    months: frozenset[int]
    weekdays: _Field
    last_weekdays: frozenset[int]

    @classmethod
    def parse(cls, expr: str, timezone: str) -> CronSchedule:
        try:
            zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidArgumentError(
                f"Unknown time zone {timezone!r} in Cron({expr!r}, {timezone!r}): use an IANA name such as "
                "'UTC' or 'America/Los_Angeles'."
            ) from None
        parts = expr.split()
        if len(parts) != 5:
            raise _invalid(expr, f"it has {len(parts)} fields")
        minute, hour, dom, month, dow = parts
        dom_items = dom.split(",")
        last_day = "L" in (i.upper() for i in dom_items)
        dom_rest = ",".join(i for i in dom_items if i.upper() != "L")
        dow_items = dow.split(",")
        last_weekdays: set[int] = set()
        dow_rest: list[str] = []
        for item in dow_items:
            if item.upper() == "L":
                raise _invalid(expr, "'L' alone is not a day of week; write nL, e.g. 5L for the last Friday")
            if len(item) > 1 and item.upper().endswith("L"):
                last_weekdays.add(_number(item[:-1], _WEEKDAYS, 0, 6, expr, "day of week"))
            else:
                dow_rest.append(item)
        days = (
            _field(dom_rest, 1, 31, {}, expr, "day of month")
            if dom_rest
            else _Field(frozenset(), restricted=True)
        )
        weekdays = (
            _field(",".join(dow_rest), 0, 6, _WEEKDAYS, expr, "day of week")
            if dow_rest
            else _Field(frozenset(), restricted=True)
        )
        schedule = cls(
            expr=expr,
            timezone=timezone,
            zone=zone,
            minutes=tuple(sorted(_field(minute, 0, 59, {}, expr, "minute").values)),
            hours=tuple(sorted(_field(hour, 0, 23, {}, expr, "hour").values)),
            days=days,
            last_day=last_day,
            months=_field(month, 1, 12, _MONTHS, expr, "month").values,
            weekdays=weekdays,
            last_weekdays=frozenset(last_weekdays),
        )
        if schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC)) is None:
            raise _invalid(expr, "it never matches a date")
        return schedule

    def _day_matches(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        last_of_month = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        in_days = day.day in self.days.values or (self.last_day and day == last_of_month)
        weekday = (day.weekday() + 1) % 7  # cron counts from Sunday
        in_weekdays = weekday in self.weekdays.values or (
            weekday in self.last_weekdays and day + timedelta(days=7) > last_of_month
        )
        dom_restricted = self.days.restricted or self.last_day
        dow_restricted = self.weekdays.restricted or bool(self.last_weekdays)
        if dom_restricted and dow_restricted:
            return in_days or in_weekdays
        if dom_restricted:
            return in_days
        if dow_restricted:
            return in_weekdays
        return True

    def _instant(self, day: date, hour: int, minute: int) -> datetime:
        local = datetime(day.year, day.month, day.day, hour, minute, tzinfo=self.zone)
        return local.astimezone(UTC)

    def next_after(self, t: datetime) -> datetime | None:
        """The first firing time strictly after ``t`` (UTC), or None within eight years."""
        local = t.astimezone(self.zone).replace(second=0, microsecond=0, tzinfo=None)
        start = local + timedelta(minutes=1)
        day = start.date()
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                for hour in self.hours:
                    for minute in self.minutes:
                        if datetime(day.year, day.month, day.day, hour, minute) < start:
                            continue
                        instant = self._instant(day, hour, minute)
                        if instant > t:
                            return instant
            day += timedelta(days=1)
        return None

    def latest_at_or_before(self, t: datetime) -> datetime | None:
        """The last firing time at or before ``t`` (UTC), or None within eight years."""
        local = t.astimezone(self.zone).replace(tzinfo=None)
        day = local.date()
        for _ in range(_HORIZON_DAYS):
            if self._day_matches(day):
                for hour in reversed(self.hours):
                    for minute in reversed(self.minutes):
                        if datetime(day.year, day.month, day.day, hour, minute) > local:
                            continue
                        instant = self._instant(day, hour, minute)
                        if instant <= t:
                            return instant
            day -= timedelta(days=1)
        return None
