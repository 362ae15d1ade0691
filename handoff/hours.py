"""Business hours: when the team answers, in its own time zone, minus holidays.

A day's ranges are half-open local wall-clock times `[start, end)`; an end of `00:00` (written
`24:00` in a spec) means midnight at the end of that day. Ranges that cross midnight
(`22:00-02:00`) are refused: write them as two ranges on two days, which also makes it plain
which of the two days a holiday removes. Times are compared in the business time zone, so a
DST change moves the opening in UTC, not on the wall clock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_FULL_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY_SECONDS = 24 * 3600
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")
_SEARCH_DAYS = 400  # holidays can close at most this many days in a row


class HoursError(ValueError):
    """A business-hours setting that cannot be understood; the message names the bad part."""


class BusinessHours:
    def __init__(
        self, timezone: str, weekly: Mapping[int, Iterable[tuple[time, time]]],
        holidays: Iterable[date] = (),
    ) -> None:
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise HoursError(f"unknown time zone {timezone!r}") from None
        self.timezone = timezone
        self.holidays = frozenset(holidays)
        # Seconds since local midnight, sorted per weekday (0 = Monday).
        self._ranges: dict[int, list[tuple[int, int]]] = {day: [] for day in range(7)}
        for day, ranges in weekly.items():
            if day not in self._ranges:
                raise HoursError(f"weekday {day} is not 0 (Monday) .. 6 (Sunday)")
            for start, end in ranges:
                begin, finish = _seconds(start), _seconds(end) or _DAY_SECONDS
                if begin >= finish:
                    raise HoursError(
                        f"{WEEKDAYS[day]} {start:%H:%M}-{end:%H:%M}: a range must end after it "
                        "starts on the same day (split ranges that cross midnight)"
                    )
                self._ranges[day].append((begin, finish))
            self._ranges[day].sort()

    @classmethod
    def parse(cls, spec: str, timezone: str = "UTC", holidays: str = "") -> BusinessHours:
        """`"mon-fri 09:00-21:00; sat,sun 10:00-18:00"`, holidays `"2026-12-31,2027-01-01"`."""
        return cls(timezone, parse_weekly(spec), parse_holidays(holidays))

    def is_open(self, at: datetime) -> bool:
        local = _aware(at).astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        now = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
        return any(start <= now < end for start, end in self._ranges[local.weekday()])

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the next opening (aware, in the business time zone)."""
        if self.is_open(at):
            return at
        moment = _aware(at).timestamp()
        first_day = at.astimezone(self.zone).date()
        for offset in range(_SEARCH_DAYS):
            day = first_day + timedelta(days=offset)
            if day in self.holidays:
                continue
            for start, _end in self._ranges[day.weekday()]:
                opening = self._local(day, start)
                # A start inside a DST gap lands later on the wall clock; it still must be open.
                if opening.timestamp() > moment and self.is_open(opening):
                    return opening
        raise HoursError(f"business hours never open within {_SEARCH_DAYS} days of {at}")

    def open_until(self, at: datetime) -> datetime | None:
        """While open, when the range `at` is in ends (a range ending at midnight that the
        next day's range continues ends there too); None while closed."""
        if not self.is_open(at):
            return None
        local = _aware(at).astimezone(self.zone)
        now = local.hour * 3600 + local.minute * 60 + local.second
        end = next(high for low, high in self._ranges[local.weekday()] if low <= now < high)
        return self._local(local.date(), end)

    def open_seconds(self, start: float, end: float) -> float:
        """Seconds of business hours between two epoch moments: how long a customer has
        waited for the team, not for the night to pass (SLA timers count these)."""
        if end <= start:
            return 0.0
        zone_start = datetime.fromtimestamp(start, self.zone).date() - timedelta(days=1)
        last = datetime.fromtimestamp(end, self.zone).date()
        total = 0.0
        day = zone_start
        while day <= last:
            if day not in self.holidays:
                for low, high in self._ranges[day.weekday()]:
                    opened = self._local(day, low).timestamp()
                    closed = self._local(day, high).timestamp()
                    total += max(0.0, min(end, closed) - max(start, opened))
            day += timedelta(days=1)
        return total

    def _local(self, day: date, seconds: int) -> datetime:
        naive = datetime.combine(day, time()) + timedelta(seconds=seconds)
        # Through UTC and back: a wall time that does not exist (DST gap) becomes a real one.
        return naive.replace(tzinfo=self.zone).astimezone(ZoneInfo("UTC")).astimezone(self.zone)

    def __repr__(self) -> str:
        return f"BusinessHours({self.timezone!r}, {self._ranges!r}, {sorted(self.holidays)!r})"


def parse_schedule(spec: str, default_timezone: str = "UTC") -> BusinessHours:
    """One person's or one desk's hours in a line: an optional time zone, the weekly ranges,
    and optional days off after `except`:

        Asia/Vladivostok mon-fri 09:00-18:00; sat 10:00-14:00; except 2027-01-01,2027-01-07

    Without a time zone the team's (`default_timezone`) is meant."""
    text = spec.strip()
    timezone = default_timezone
    first, _, rest = text.partition(" ")
    if "/" in first or first.upper() == "UTC":
        timezone, text = first, rest.strip()
    weekly, holidays = [], ""
    for part in (p.strip() for p in text.split(";") if p.strip()):
        if part.lower().startswith("except"):
            holidays += "," + part[len("except"):]
        else:
            weekly.append(part)
    return BusinessHours(timezone, parse_weekly("; ".join(weekly)), parse_holidays(holidays))


def parse_named(text: str, what: str) -> list[tuple[str, str]]:
    """`name = spec | name = spec` -> [(name, spec)]: the form of DESK_HOURS and DESK_SHIFTS
    (`|` because a spec itself uses `;` and `,`). `what` names an entry in errors."""
    pairs: list[tuple[str, str]] = []
    for number, part in enumerate((p.strip() for p in text.split("|") if p.strip()), 1):
        name, equals, spec = part.partition("=")
        if not equals or not name.strip() or not spec.strip():
            raise HoursError(f"{what} {number} ({part!r}): write it as name = hours")
        if any(seen == name.strip() for seen, _ in pairs):
            raise HoursError(f"{what} {number} ({part!r}): {name.strip()!r} is given twice")
        pairs.append((name.strip(), spec.strip()))
    return pairs


def parse_weekly(spec: str) -> dict[int, list[tuple[time, time]]]:
    """Parts separated by `;`: days (`mon`, `mon-fri`, `sat,sun`, `daily`), then ranges
    (`09:00-13:00,14:00-18:00`). Days not named are closed."""
    weekly: dict[int, list[tuple[time, time]]] = {}
    parts = [part.strip() for part in spec.split(";") if part.strip()]
    if not parts:
        raise HoursError("business hours: no opening hours given")
    for part in parts:
        pieces = part.split(None, 1)
        if len(pieces) != 2:
            raise HoursError(
                f"business hours: {part!r} needs days and ranges, e.g. 'mon-fri 09:00-18:00'"
            )
        days, ranges = pieces
        for day in _days(days, part):
            weekly.setdefault(day, []).extend(_ranges(ranges, part))
    return weekly


def parse_holidays(spec: str) -> set[date]:
    holidays = set()
    for item in re.split(r"[,\s]+", spec.strip()):
        if not item:
            continue
        try:
            holidays.add(date.fromisoformat(item))
        except ValueError:
            raise HoursError(f"holidays: bad date {item!r} (use YYYY-MM-DD)") from None
    return holidays


def _days(text: str, part: str) -> list[int]:
    if text.lower() in ("daily", "*"):
        return list(range(7))
    days: list[int] = []
    for item in text.lower().split(","):
        first, _, last = item.strip().partition("-")
        begin, end = _weekday(first, part), _weekday(last or first, part)
        # mon-fri, and wrapping spans such as fri-mon
        days.extend((begin + step) % 7 for step in range((end - begin) % 7 + 1))
    return days


def _weekday(name: str, part: str) -> int:
    key = name.strip()
    for number, (short, full) in enumerate(zip(WEEKDAYS, _FULL_NAMES, strict=True)):
        if key in (short, full):
            return number
    raise HoursError(f"business hours: unknown day {name!r} in {part!r} (use mon..sun)")


def _ranges(text: str, part: str) -> list[tuple[time, time]]:
    ranges = []
    for item in re.sub(r"\s+", "", text).split(","):
        start, sep, end = item.partition("-")
        if not sep:
            raise HoursError(f"business hours: bad range {item!r} in {part!r} (use HH:MM-HH:MM)")
        begin, finish = _clock(start, item, part), _clock(end, item, part, end_of_day=True)
        if _seconds(begin) >= (_seconds(finish) or _DAY_SECONDS):
            raise HoursError(
                f"business hours: range {item!r} in {part!r} ends before it starts "
                "(ranges cannot cross midnight: split them over two days)"
            )
        ranges.append((begin, finish))
    return ranges


def _clock(text: str, item: str, part: str, *, end_of_day: bool = False) -> time:
    match = _TIME.match(text)
    hour, minute = (int(match[1]), int(match[2])) if match else (-1, -1)
    if end_of_day and (hour, minute) == (24, 0):
        return time(0, 0)  # midnight at the end of the day
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        raise HoursError(f"business hours: bad time {text!r} in {item!r} of {part!r}")
    return time(hour, minute)


def _seconds(value: time) -> int:
    return value.hour * 3600 + value.minute * 60 + value.second


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None:
        raise ValueError("business hours need an aware datetime (with a time zone)")
    return at
