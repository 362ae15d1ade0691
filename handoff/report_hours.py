"""The team's figures hour by hour over a period, for charts (the console's supervisor pages,
`GET /reports/hourly`).

Read from the same hourly hashes the operators' report adds up (handoff/reports.py,
lua/lib_report.lua), only the team's (`all|…`) fields: one HMGET per hour in one pipeline, so a
30-day chart reads 720 small replies whatever the traffic. Hourly counters are kept
`HOUR_DAYS` days: a period reaching further back is refused rather than drawn as zeros.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from redis.asyncio import Redis

from handoff.keys import Keys
from handoff.reports import BOUNDS, HOUR_DAYS, ReportError, ReportPeriod, durations

COUNTED = ("taken", "closed", "returned", "transferred")
_BUCKETS = tuple(f"all|first_reaction|b{i}" for i in range(1, len(BOUNDS) + 2))
FIELDS = (*(f"all|{name}" for name in COUNTED), *_BUCKETS, "all|first_reaction|sum",
          "all|csat_n", "all|csat_sum")
COLUMNS = ("hour", "start", *COUNTED, "first_reaction_count", "first_reaction_p50",
           "first_reaction_p90", "csat_ratings", "csat_average")


@dataclass(frozen=True, slots=True)
class Hour:
    start: float
    taken: int
    closed: int
    returned: int
    transferred: int
    first_reaction_count: int
    first_reaction_p50: float | None
    first_reaction_p90: float | None
    csat_ratings: int
    csat_average: float | None


async def read_hours(redis: Redis, keys: Keys, period: ReportPeriod, now: float) -> list[Hour]:
    """Every hour of the period, oldest first (hours without a hash are zeros)."""
    if period.start < now - HOUR_DAYS * 86400:
        raise ReportError(f"hourly figures are kept {HOUR_DAYS} days: choose a later period")
    hours = list(period.hours)
    async with redis.pipeline(transaction=False) as pipe:
        for hour in hours:
            pipe.hmget(keys.report_hour(hour), FIELDS)
        replies = await pipe.execute()
    return [_hour(hour, dict(zip(FIELDS, values, strict=True)))
            for hour, values in zip(hours, replies, strict=True)]


def _hour(hour: int, raw: dict[str, str | None]) -> Hour:
    def number(name: str) -> float:
        value = raw.get(name)
        return float(value) if value else 0.0

    reaction = durations([int(number(name)) for name in _BUCKETS],
                         number("all|first_reaction|sum"))
    ratings = int(number("all|csat_n"))
    return Hour(
        start=hour * 3600.0,
        taken=int(number("all|taken")), closed=int(number("all|closed")),
        returned=int(number("all|returned")), transferred=int(number("all|transferred")),
        first_reaction_count=reaction.count, first_reaction_p50=reaction.p50,
        first_reaction_p90=reaction.p90, csat_ratings=ratings,
        csat_average=round(number("all|csat_sum") / ratings, 2) if ratings else None,
    )


def hour_rows(hours: list[Hour], zone: str) -> list[list[str]]:
    """CSV rows under COLUMNS: the hour as a local time in `zone`, then the figures."""
    tz = ZoneInfo(zone)
    rows = []
    for hour in hours:
        local = datetime.fromtimestamp(hour.start, tz).strftime("%Y-%m-%d %H:%M")
        values = asdict(hour)
        rows.append([local, f"{hour.start:.0f}", *(_cell(values[name]) for name in COLUMNS[2:])])
    return rows


def _cell(value: float | int | None) -> str:
    return "" if value is None else f"{value:g}"
