"""Five-field cron schedules (UTC), enough to ask one question: when did the schedule last fire?

Fields are minute, hour, day of month, month and day of week, each ``*``, a number or name, a range
``a-b``, a step ``*/n`` or ``a-b/n``, or a comma list of those; ``@hourly``, ``@daily``, ``@midnight``,
``@weekly``, ``@monthly`` and ``@yearly`` are shorthands. As in cron, when both day fields are
restricted a day matches if either does.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

__all__ = ["CronSchedule", "parse_cron"]

_MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {m: i + 1 for i, m in enumerate(_MONTH_NAMES)}
_DAYS = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
# (low, high, names) per field.
_FIELDS = ((0, 59, {}), (0, 23, {}), (1, 31, {}), (1, 12, _MONTHS), (0, 7, _DAYS))
# A schedule that matches no day in this many years (e.g. 30 February) never fires.
_HORIZON_DAYS = 366 * 8


def _number(token: str, names: dict[str, int]) -> int:
    token = token.lower()
    if token in names:
        return names[token]
    if not token.isdigit():
        raise ValueError(f"{token!r} is not a number or a name")
    return int(token)


def _field(text: str, low: int, high: int, names: dict[str, int]) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step of {part!r} must be at least 1")
        if base == "*":
            start, stop = low, high
        elif "-" in base:
            a, b = base.split("-", 1)
            start, stop = _number(a, names), _number(b, names)
        else:
            start = _number(base, names)
            stop = high if step_text else start
        if not low <= start <= stop <= high:
            raise ValueError(f"{part!r} is outside {low}-{high}")
        values.update(range(start, stop + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month is *
    any_weekday: bool  # day of week is *

    def _day_matches(self, day: datetime) -> bool:
        if day.month not in self.months:
            return False
        by_date = day.day in self.days
        by_weekday = (day.isoweekday() % 7) in self.weekdays
        if self.any_day or self.any_weekday:
            return by_date and by_weekday
        return by_date or by_weekday

    def previous(self, now: datetime) -> datetime | None:
        """The latest fire time at or before ``now`` (whole minutes, UTC); None if there is none."""
        now = now.astimezone(UTC).replace(second=0, microsecond=0)
        day = now.replace(hour=0, minute=0)
        for back in range(_HORIZON_DAYS):
            candidate = day - timedelta(days=back)
            if not self._day_matches(candidate):
                continue
            limit = now.hour * 60 + now.minute if back == 0 else 24 * 60 - 1
            for hour in sorted(self.hours, reverse=True):
                for minute in sorted(self.minutes, reverse=True):
                    if hour * 60 + minute <= limit:
                        return candidate.replace(hour=hour, minute=minute)
        return None

    def fired_since(self, since: datetime, now: datetime) -> datetime | None:
        """The latest fire time in ``(since, now]``, if the schedule fired in between."""
        fire = self.previous(now)
        return fire if fire is not None and fire > since else None


def parse_cron(expression: str) -> CronSchedule:
    """Parse a cron expression; ValueError says what is wrong with it."""
    text = _MACROS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != 5:
        raise ValueError(f"{expression!r}: a cron schedule has 5 fields, got {len(parts)}")
    minutes, hours, days, months, weekdays = (
        _field(p, lo, hi, names) for p, (lo, hi, names) in zip(parts, _FIELDS, strict=True)
    )
    return CronSchedule(
        minutes=minutes,
        hours=hours,
        days=days,
        months=months,
        weekdays=frozenset(d % 7 for d in weekdays),
        # As in Vixie cron, a field that starts with * (also */n) counts as unrestricted for the OR rule.
        any_day=parts[2].startswith("*"),
        any_weekday=parts[4].startswith("*"),
    )
