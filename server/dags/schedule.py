"""The slots of a DAG's schedule, and which of them are due.

A cron schedule's slots are its firing times. An interval schedule's slots are
``anchor + k * interval`` (k >= 1), counted from the DAG's last resume, as Snowflake counts
``SCHEDULE = 'n MINUTE'`` from the resume.

Catch-up policy: when the scheduler finds several slots past (no scheduler ran through them,
e.g. every control plane was down), it fires only the latest one, once, and records how many
earlier slots it stands for in the run's ``missed_slots``. Snowflake likewise runs at most
one missed run. A slot that is due but not yet fired is never lost: ``next_slot_at`` stays on
it until a scheduler fires it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from runbatch.core.task.cron import CronSchedule
from runbatch.errors import InvalidArgumentError
from runbatch.wire.dags import DagSchedule

__all__ = ["Due", "Slots", "MISSED_COUNT_LIMIT"]

# Counting missed cron slots one by one stops here (a year of per-minute slots is 525,600).
MISSED_COUNT_LIMIT = 100_000
_MIN_INTERVAL = timedelta(seconds=1)


@dataclass(frozen=True)
class Due:
    slot: datetime  # the slot to fire: the latest one at or before now
    missed: int  # earlier unfired slots it stands for
    next: datetime  # the first slot after it


@dataclass(frozen=True)
class Slots:
    cron: CronSchedule | None
    interval: timedelta | None
    anchor: datetime | None

    @classmethod
    def of(cls, schedule: dict[str, Any] | None, anchor: datetime | None) -> Slots | None:
        """The slots of a stored schedule (``DagSchedule`` as JSON), or None when the DAG has none."""
        if schedule is None:
            return None
        spec = DagSchedule.model_validate(schedule)
        if spec.cron is not None:
            assert spec.timezone is not None
            return cls(CronSchedule.parse(spec.cron, spec.timezone), None, None)
        assert spec.interval_s is not None
        interval = timedelta(seconds=spec.interval_s)
        if interval < _MIN_INTERVAL:
            raise InvalidArgumentError(
                f"The schedule's interval of {spec.interval_s}s is shorter than the minimum of 1 second."
            )
        return cls(None, interval, anchor)

    def first_after(self, t: datetime) -> datetime:
        if self.cron is not None:
            found = self.cron.next_after(t)
            if found is None:  # parse() refuses schedules that never fire
                raise InvalidArgumentError(f"Cron {self.cron.expr!r} has no time after {t.isoformat()}.")
            return found
        assert self.interval is not None and self.anchor is not None
        if t < self.anchor:
            return self.anchor + self.interval
        return self.anchor + ((t - self.anchor) // self.interval + 1) * self.interval

    def due(self, first_unfired: datetime, now: datetime) -> Due | None:
        """The slot to fire now, given the first slot not fired yet; None when it is still ahead."""
        if first_unfired > now:
            return None
        if self.cron is not None:
            latest = self.cron.latest_at_or_before(now)
            if latest is None or latest < first_unfired:
                return None
            missed = 0
            slot = first_unfired
            while slot < latest and missed < MISSED_COUNT_LIMIT:
                missed += 1
                slot = self.first_after(slot)
            return Due(latest, missed, self.first_after(latest))
        assert self.interval is not None and self.anchor is not None
        first = (first_unfired - self.anchor) // self.interval
        latest_k = (now - self.anchor) // self.interval
        if latest_k < first:
            return None
        slot = self.anchor + latest_k * self.interval
        return Due(slot, latest_k - first, slot + self.interval)
