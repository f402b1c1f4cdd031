"""Instance hours per month from the Auto Scaling group's desired capacity and its peak schedule.

Each scheduled action (5-field Unix cron, as ``gearlift_asg_peak_schedule`` takes them) sets the
group's desired capacity when it fires. The year is simulated minute by minute of the day the
actions fire (a fixed non-leap year, 2027, starting on a Friday); the capacity before the first
action of the year is the one the last action of the year leaves (the schedule repeats). Time
zones move the firing times but not the hours, and are ignored. Target tracking may add instances
on top of this; the cost section's sensitivity line prices one more instance.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gearlift.report.errors import ReportError

YEAR = 2027
MINUTES_PER_YEAR = 365 * 24 * 60
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_FIELDS: tuple[tuple[str, int, int, tuple[str, ...], int], ...] = (
    ("minute", 0, 59, (), 0),
    ("hour", 0, 23, (), 0),
    ("day of month", 1, 31, (), 0),
    ("month", 1, 12, _MONTHS, 1),
    ("day of week", 0, 7, _DAYS, 0),
)


@dataclass(frozen=True)
class ScheduledAction:
    name: str
    recurrence: str
    desired_capacity: int


@dataclass(frozen=True)
class CapacityProfile:
    """How many instances run, on average and at least, over the year."""

    average: float
    baseline: int
    peak: int
    peak_hours_per_year: float

    def instance_hours(self, hours_per_month: float) -> float:
        return self.average * hours_per_month


def _value(text: str, names: tuple[str, ...], first: int, what: str, expression: str) -> int:
    upper = text.upper()
    if upper in names:
        return names.index(upper) + first
    if not text.isdigit():
        raise ReportError(f"cron '{expression}': '{text}' is not a valid {what}")
    return int(text)


def parse_field(text: str, index: int, expression: str) -> tuple[set[int], bool]:
    """Values one cron field matches, and whether it is unrestricted ('*')."""
    what, low, high, names, first = _FIELDS[index]
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise ReportError(f"cron '{expression}': bad step '{step_text}' in the {what} field")
            step = int(step_text)
        if body == "*":
            start, end = low, high
        elif "-" in body:
            a, b = body.split("-", 1)
            start, end = _value(a, names, first, what, expression), _value(b, names, first, what, expression)
        else:
            start = _value(body, names, first, what, expression)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ReportError(f"cron '{expression}': {what} '{part}' is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    if index == 4 and 7 in values:  # 7 = Sunday as well
        values.discard(7)
        values.add(0)
    return values, text == "*"


def firing_minutes(expression: str) -> list[int]:
    """Minutes of YEAR (0 = Jan 1 00:00) at which the cron expression fires."""
    fields = expression.split()
    if len(fields) != 5:
        raise ReportError(f"cron '{expression}': expected 5 fields (minute hour day-of-month month day-of-week)")
    parsed = [parse_field(text, i, expression) for i, text in enumerate(fields)]
    (minutes, _), (hours, _), (doms, dom_any), (months, _), (dows, dow_any) = parsed
    times = sorted(h * 60 + m for h in hours for m in minutes)
    out: list[int] = []
    day = dt.date(YEAR, 1, 1)
    for ordinal in range(365):
        date = day + dt.timedelta(days=ordinal)
        if date.month not in months:
            continue
        dom_ok = date.day in doms
        dow_ok = (date.weekday() + 1) % 7 in dows
        # cron: with both day fields restricted, either one matching is enough
        matches = (dom_ok or dow_ok) if not dom_any and not dow_any else (dom_ok and dow_ok)
        if matches:
            out.extend(ordinal * 1440 + t for t in times)
    return out


def capacity_profile(desired: int, actions: list[ScheduledAction]) -> CapacityProfile:
    """Average / lowest / highest desired capacity over the simulated year."""
    events: list[tuple[int, int, int]] = []
    for order, action in enumerate(actions):
        events.extend((minute, order, action.desired_capacity) for minute in firing_minutes(action.recurrence))
    if not events:
        return CapacityProfile(average=float(desired), baseline=desired, peak=desired, peak_hours_per_year=0.0)
    events.sort()
    level = events[-1][2]  # the schedule repeats: the year starts where it ended
    levels = [level]
    area = 0
    previous = 0
    for minute, _, capacity in events:
        area += level * (minute - previous)
        previous = minute
        level = capacity
        levels.append(level)
    area += level * (MINUTES_PER_YEAR - previous)
    baseline = min(levels)
    average = area / MINUTES_PER_YEAR
    return CapacityProfile(
        average=average,
        baseline=baseline,
        peak=max(levels),
        peak_hours_per_year=(area - baseline * MINUTES_PER_YEAR) / 60,
    )
